//! The report's one pass over the records: connection and collision records come off disk in
//! `uid` order ([`crate::spill`]), a chunk at a time; each chunk becomes rows of the
//! `connections` and `collisions` exports (a Parquet row group, CSV lines) and feeds what the
//! rest of the report is made from ([`RecordDigest`]: the timeline, the charts' sample and
//! histograms, the capacity model's tuples, the collisions to show). Memory: per table, the
//! chunk being read and at most two chunks' rows (one made and encoded as Parquet while the
//! CSV thread writes the one before), the timeline, and fixed-size digests, whatever the
//! number of records.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use rustc_hash::FxHashSet;
use twsleuth_flows::{
    ActiveCloser, CollisionRecord, ConnectionRecord, Findings, Outcome, Reason, SECOND_NS, Summary,
    TimeWaitPolicy,
};

use crate::analysis::CAPACITY_SOURCES;
use crate::charts::{ChartSample, TimestampSample};
use crate::evidence::ShownCollisions;
use crate::export::{
    NamedColumn, ParquetTable, collisions_columns, connections_columns, write_csv_header,
    write_csv_rows,
};
use crate::files::Pending;
use crate::tables::{
    ConnectionsTable, Successor, SuccessorJoin, TimelineBuilder, TimelineTable, busiest_sources,
    collisions_table, connections_table, successors_of, time_wait_end,
};

/// Records turned into rows at a time: one Parquet row group (~10 MB of connection rows). With
/// both tables exported at once, 65,536 took 76 MiB more at the peak for the same speed.
pub const CHUNK_RECORDS: usize = 32_768;

/// The records of an analysis, each stream in order: connections and collisions by `uid`,
/// successors by `prev_uid`.
pub struct RecordStreams<C, K, S> {
    /// Connection records.
    pub connections: C,
    /// Collision records.
    pub collisions: K,
    /// The next incarnation of each reused tuple ([`Successor`]).
    pub successors: S,
}

/// The collisions the report names and shows.
#[derive(Debug, Default)]
pub struct CollisionDigest {
    /// Collisions.
    pub count: u64,
    /// The last.
    pub last: Option<CollisionRecord>,
    /// The first, the worst, and the first of each outcome and reason.
    pub shown: ShownCollisions,
    /// Per outcome and input of the first SYN: the first SYNs' frame numbers (the first
    /// [`FILTER_FRAMES_MAX`]) and how many there are, for a filter that selects them all.
    pub syn_frames: BTreeMap<(Outcome, u16), (Vec<u64>, u64)>,
}

/// First-SYN frames kept per outcome and input for the report's filters: a longer list is no
/// filter anyone pastes; `collisions.csv` has every collision's own.
pub const FILTER_FRAMES_MAX: usize = 500;

impl CollisionDigest {
    fn add(&mut self, c: &mut CollisionRecord) {
        self.count += 1;
        self.shown.offer(c);
        self.last = Some(c.clone());
        let (frames, count) = self
            .syn_frames
            .entry((c.outcome, c.first_syn_frame.file_index))
            .or_default();
        *count += 1;
        if frames.len() < FILTER_FRAMES_MAX {
            frames.push(c.first_syn_frame.number);
        }
    }
}

/// The 4-tuples one busy source used, for the capacity model.
#[derive(Debug, Clone)]
pub struct SourceTuples {
    /// The source.
    pub orig_h: IpAddr,
    /// Distinct (source port, destination address, destination port).
    pub tuples: u64,
    /// Distinct destinations (address, port).
    pub destinations: u64,
    /// Its new connections per second.
    pub rate: Rate,
    /// Its connections the server closed first (or both at once): the server holds their
    /// TIME_WAIT.
    pub server_closed_first: u64,
    /// Its connections the source closed first alone: it holds their TIME_WAIT itself.
    pub client_closed_first: u64,
}

/// A capture span from which rates are measured in 1 s windows; a shorter one is measured in
/// windows of a tenth of it, so that a 300 ms burst is not read as 1 s of traffic.
const LONG_SPAN_NS: i64 = 10 * SECOND_NS;

/// New connections per second, from connection starts: the mean over the real span (first to
/// last start, not rounded to whole seconds) and the peak in a sliding window.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Rate {
    /// Connections counted.
    pub connections: u64,
    /// First to last connection start, ns.
    pub span_ns: i64,
    /// The sliding window's width, ns: 1 s, or a tenth of the span when it is under 10 s;
    /// 0 when every connection started at the same instant.
    pub window_ns: i64,
    /// Most connection starts in one window.
    pub peak_in_window: u64,
    /// `peak_in_window` per second of window; `None` without a window.
    pub peak_per_s: Option<f64>,
    /// `connections` per second of span; `None` when the span is 0.
    pub mean_per_s: Option<f64>,
}

/// Gathers a [`Rate`] from connection starts in (about) time order. Starts are kept only
/// while the span is under 10 s (to choose the window once the span is known), then only
/// those in the last second.
#[derive(Default)]
struct RateWindow {
    connections: u64,
    first: Option<i64>,
    last: i64,
    /// Every start, while the span is under [`LONG_SPAN_NS`].
    early: Option<Vec<i64>>,
    /// Starts in the last second, once the span is long.
    window: std::collections::VecDeque<i64>,
    peak: u64,
}

impl RateWindow {
    fn new() -> RateWindow {
        RateWindow {
            early: Some(Vec::new()),
            last: i64::MIN,
            ..RateWindow::default()
        }
    }

    fn add(&mut self, start_ns: i64) {
        self.connections += 1;
        let first = self.first.map_or(start_ns, |f| f.min(start_ns));
        self.first = Some(first);
        self.last = self.last.max(start_ns);
        match &mut self.early {
            Some(early) => {
                early.push(start_ns);
                if self.last.saturating_sub(first) >= LONG_SPAN_NS {
                    let mut early = self.early.take().unwrap_or_default();
                    early.sort_unstable();
                    for start in early {
                        self.slide(start, SECOND_NS);
                    }
                }
            }
            None => self.slide(start_ns, SECOND_NS),
        }
    }

    /// Counts `start` in the window ending at it: the starts less than `width` before it.
    fn slide(&mut self, start: i64, width: i64) {
        self.window.push_back(start);
        while self
            .window
            .front()
            .is_some_and(|front| start.saturating_sub(*front) >= width)
        {
            self.window.pop_front();
        }
        self.peak = self.peak.max(self.window.len() as u64);
    }

    fn finish(mut self) -> Rate {
        let span_ns = self
            .first
            .map_or(0, |first| self.last.saturating_sub(first));
        let window_ns = match self.early.take() {
            None => SECOND_NS,
            Some(mut early) => {
                let width = span_ns / 10;
                if width > 0 {
                    early.sort_unstable();
                    for start in early {
                        self.slide(start, width);
                    }
                }
                width
            }
        };
        let per_s = |n: u64, ns: i64| (ns > 0).then(|| n as f64 * 1e9 / ns as f64);
        Rate {
            connections: self.connections,
            span_ns,
            window_ns,
            peak_in_window: self.peak,
            peak_per_s: per_s(self.peak, window_ns),
            mean_per_s: per_s(self.connections, span_ns),
        }
    }
}

/// What the report is made from besides the summary: gathered record by record.
pub struct RecordDigest {
    /// New connections per second, all sources.
    pub rate: Rate,
    /// Per second and source.
    pub timeline: TimelineTable,
    /// What the charts draw of the connections.
    pub charts: ChartSample,
    /// First connection's start, last connection's end (ns since the epoch).
    pub capture_span: Option<(i64, i64)>,
    /// Connections the responder (server) closed first.
    pub server_closed_first: u64,
    /// Connections with something inferred.
    pub low_confidence: u64,
    /// The busiest sources' tuples, in the summary's order of sources.
    pub tuples: Vec<SourceTuples>,
    /// The collisions to name and show.
    pub collisions: CollisionDigest,
    /// The colliding SYNs' timestamps, for their chart.
    pub timestamps: TimestampSample,
}

impl RecordDigest {
    /// The digest of findings held in memory (tests, the fuzz target), gathered as the report
    /// gathers it, without writing files.
    pub fn of(findings: &Findings, summary: &Summary, policy: &TimeWaitPolicy) -> RecordDigest {
        let addresses = busiest_sources(&findings.connections);
        let streams = RecordStreams {
            connections: findings.connections.iter().cloned().map(Ok),
            collisions: findings.collisions.iter().cloned().map(Ok),
            successors: successors_of(&findings.connections).into_iter().map(Ok),
        };
        let (digest, _) = export_records(
            None,
            streams,
            summary,
            policy,
            (&addresses, false),
            CHUNK_RECORDS,
        )
        .expect("records in memory read without error, and nothing is written");
        digest
    }
}

/// Writes `data/connections.*` and `data/collisions.*` into `data_dir` (when given) from
/// `streams` and gathers the [`RecordDigest`]; returns it with the files written.
/// `timeline_sources` are the busiest sources' addresses (at most
/// [`crate::tables::TIMELINE_SOURCES`] get a series) and whether there are others;
/// `chunk_records` records make a chunk ([`CHUNK_RECORDS`]; tests take fewer).
pub fn export_records<C, K, S>(
    data_dir: Option<&Path>,
    streams: RecordStreams<C, K, S>,
    summary: &Summary,
    policy: &TimeWaitPolicy,
    timeline_sources: (&[IpAddr], bool),
    chunk_records: usize,
) -> io::Result<(RecordDigest, Vec<PathBuf>)>
where
    C: Iterator<Item = io::Result<ConnectionRecord>>,
    K: Iterator<Item = io::Result<CollisionRecord>> + Send,
    S: Iterator<Item = io::Result<Successor>>,
{
    if let Some(dir) = data_dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut connections = streams.connections.peekable();
    let capture_start_ns = match connections.peek() {
        Some(Ok(c)) => c.ts_ns,
        _ => 0,
    };
    // The two tables are exported side by side: each chunk's work (merging the runs, building
    // rows, Parquet, CSV) is mostly serial, and the collisions are as many as the connections
    // on a balancer cycling its ports.
    std::thread::scope(|scope| {
        let collisions = scope.spawn(move || {
            export_collisions(
                scope,
                data_dir,
                streams.collisions,
                capture_start_ns,
                chunk_records,
            )
        });
        let connections = export_connections(
            scope,
            data_dir,
            connections,
            streams.successors,
            (summary, policy),
            timeline_sources,
            (capture_start_ns, chunk_records),
        );
        let (collisions, timestamps, collision_files) = collisions
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        let (mut digest, mut written) = connections?;
        digest.collisions = collisions;
        digest.timestamps = timestamps;
        written.extend(collision_files);
        Ok((digest, written))
    })
}

/// Writes `data/collisions.*` (when there is a directory) and gathers what the report takes
/// from the collisions.
fn export_collisions<'scope>(
    scope: &'scope Scope<'scope, '_>,
    data_dir: Option<&Path>,
    records: impl Iterator<Item = io::Result<CollisionRecord>>,
    capture_start_ns: i64,
    chunk_records: usize,
) -> io::Result<(CollisionDigest, TimestampSample, Vec<PathBuf>)> {
    let mut collisions = CollisionDigest::default();
    let mut timestamps = TimestampSample::default();
    let mut export = TableExport::create(
        scope,
        data_dir,
        "collisions",
        collisions_columns,
        &collisions_table(&[]),
    )?;
    let mut chunk = Vec::with_capacity(chunk_records);
    let mut records = records.peekable();
    while records.peek().is_some() {
        chunk.clear();
        for record in records.by_ref().take(chunk_records.max(1)) {
            let mut record = record?;
            collisions.add(&mut record);
            timestamps.add(
                record.uid,
                record.ts_ns.saturating_sub(capture_start_ns) as f64 / 1e9,
                record.syn_tsval,
                record.old_ts_recent,
                record.reason == Some(Reason::Paws),
            );
            chunk.push(record);
        }
        export.write(collisions_table(&chunk))?;
    }
    Ok((collisions, timestamps, export.commit()?))
}

/// Writes `data/connections.*` (when there is a directory) and gathers the rest of the
/// [`RecordDigest`] from the connections, joined with their successors.
fn export_connections<'scope>(
    scope: &'scope Scope<'scope, '_>,
    data_dir: Option<&Path>,
    mut connections: std::iter::Peekable<impl Iterator<Item = io::Result<ConnectionRecord>>>,
    successors: impl Iterator<Item = io::Result<Successor>>,
    (summary, policy): (&Summary, &TimeWaitPolicy),
    timeline_sources: (&[IpAddr], bool),
    (capture_start_ns, chunk_records): (i64, usize),
) -> io::Result<(RecordDigest, Vec<PathBuf>)> {
    let chart_sources: Vec<String> = summary
        .sources
        .iter()
        .map(|s| s.orig_h.to_string())
        .collect();
    let busy: Vec<IpAddr> = summary
        .sources
        .iter()
        .take(CAPACITY_SOURCES)
        .map(|s| s.orig_h)
        .collect();
    let mut tuples: Vec<FxHashSet<(u16, IpAddr, u16)>> = vec![FxHashSet::default(); busy.len()];
    // (server closed first, the source closed first alone), per busy source.
    let mut closers: Vec<(u64, u64)> = vec![(0, 0); busy.len()];
    let mut rate = RateWindow::new();
    let mut source_rates: Vec<RateWindow> = busy.iter().map(|_| RateWindow::new()).collect();
    let mut digest = RecordDigest {
        rate: Rate::default(),
        timeline: TimelineTable::default(),
        charts: ChartSample::new(capture_start_ns, &chart_sources),
        capture_span: None,
        server_closed_first: 0,
        low_confidence: 0,
        tuples: Vec::new(),
        collisions: CollisionDigest::default(),
        timestamps: TimestampSample::default(),
    };
    let mut timeline = TimelineBuilder::new(timeline_sources.0, timeline_sources.1);
    let mut join = SuccessorJoin::new(successors);
    let mut export = TableExport::create(
        scope,
        data_dir,
        "connections",
        connections_columns,
        &ConnectionsTable::default(),
    )?;
    let mut chunk = Vec::with_capacity(chunk_records);
    let mut ends = Vec::with_capacity(chunk_records);
    while connections.peek().is_some() {
        chunk.clear();
        ends.clear();
        for record in connections.by_ref().take(chunk_records.max(1)) {
            let c = record?;
            let end = time_wait_end(&c, join.next_start(c.uid)?, policy);
            timeline.add(&c, end);
            let last = c.ts_ns.saturating_add(c.duration_ns);
            digest.capture_span = Some(match digest.capture_span {
                None => (c.ts_ns, last),
                Some((first, l)) => (first, l.max(last)),
            });
            digest.server_closed_first += u64::from(c.active_closer == Some(ActiveCloser::Resp));
            digest.low_confidence += u64::from(c.low_confidence != 0);
            rate.add(c.ts_ns);
            if let Some(i) = busy.iter().position(|ip| *ip == c.orig_h) {
                source_rates[i].add(c.ts_ns);
                tuples[i].insert((c.orig_p, c.resp_h, c.resp_p));
                match c.active_closer {
                    Some(ActiveCloser::Resp | ActiveCloser::Both) => closers[i].0 += 1,
                    Some(ActiveCloser::Orig) => closers[i].1 += 1,
                    None => {}
                }
            }
            chunk.push(c);
            ends.push(end);
        }
        let table = connections_table(&chunk, &ends);
        digest.charts.add(&table);
        export.write(table)?;
    }
    let written = export.commit()?;
    digest.timeline = timeline.finish();
    digest.rate = rate.finish();
    let closed_first = closers.into_iter().zip(source_rates);
    digest.tuples = busy
        .into_iter()
        .zip(tuples)
        .zip(closed_first)
        .map(
            |((orig_h, tuples), ((server_closed_first, client_closed_first), rate))| {
                let destinations: BTreeSet<(IpAddr, u16)> =
                    tuples.iter().map(|&(_, ip, port)| (ip, port)).collect();
                SourceTuples {
                    orig_h,
                    tuples: tuples.len() as u64,
                    destinations: destinations.len() as u64,
                    rate: rate.finish(),
                    server_closed_first,
                    client_closed_first,
                }
            },
        )
        .collect();
    Ok((digest, written))
}

/// One table's Parquet and CSV files, written a chunk of rows at a time under temporary
/// names, given their names by [`TableExport::commit`]; nothing when there is no directory.
/// A chunk's CSV lines are written on a thread of their own while the caller reads and encodes
/// the next chunk's Parquet row group: the collisions' export is the longer of the two
/// tables', and alone at its end it left the second core idle for about a tenth of `report`'s
/// time on the bench capture.
struct TableExport<'scope, T> {
    files: Option<Files<'scope, T>>,
    columns: ColumnsOf<T>,
}

/// A table's columns, for both formats.
type ColumnsOf<T> = for<'a> fn(&'a T) -> Vec<NamedColumn<'a>>;

/// What the CSV thread gives back when the input is done: the file, to be flushed and named.
type CsvFile = (Pending, io::BufWriter<File>);

struct Files<'scope, T> {
    parquet_path: PathBuf,
    parquet: (Pending, ParquetTable<io::BufWriter<File>>),
    csv_path: PathBuf,
    /// Chunks for the CSV thread, handed over when it is done with the one before: a table
    /// holds at most two chunks' rows, the one it writes and the one the caller makes.
    csv_chunks: SyncSender<T>,
    csv_thread: ScopedJoinHandle<'scope, io::Result<CsvFile>>,
}

impl<'scope, T: Send + 'scope> TableExport<'scope, T> {
    /// Creates `data_dir/<name>.parquet` and `.csv` for a table of `columns` (of `empty`: its
    /// columns give the schema and the header) and starts the CSV thread in `scope`.
    fn create(
        scope: &'scope Scope<'scope, '_>,
        data_dir: Option<&Path>,
        name: &str,
        columns: ColumnsOf<T>,
        empty: &T,
    ) -> io::Result<Self> {
        let Some(data_dir) = data_dir else {
            return Ok(TableExport {
                files: None,
                columns,
            });
        };
        let parquet_path = data_dir.join(format!("{name}.parquet"));
        let (pending, writer) = Pending::create(&parquet_path)?;
        let parquet = ParquetTable::create(writer, &columns(empty))?;
        let csv_path = data_dir.join(format!("{name}.csv"));
        let (csv_pending, mut csv) = Pending::create(&csv_path)?;
        write_csv_header(&columns(empty), &mut csv)?;
        let (csv_chunks, chunks) = mpsc::sync_channel::<T>(0);
        let csv_thread = std::thread::Builder::new()
            .name(format!("twsleuth-{name}-csv"))
            .spawn_scoped(scope, move || {
                for chunk in chunks {
                    write_csv_rows(&columns(&chunk), &mut csv)?;
                }
                Ok((csv_pending, csv))
            })?;
        Ok(TableExport {
            files: Some(Files {
                parquet_path,
                parquet: (pending, parquet),
                csv_path,
                csv_chunks,
                csv_thread,
            }),
            columns,
        })
    }

    /// Appends rows: a Parquet row group, then CSV lines on the CSV thread.
    fn write(&mut self, table: T) -> io::Result<()> {
        let Some(files) = &mut self.files else {
            return Ok(());
        };
        files.parquet.1.write(&(self.columns)(&table))?;
        if files.csv_chunks.send(table).is_err() {
            // The CSV thread stopped at an error: that error is the one to report.
            let Files { csv_thread, .. } = self.files.take().expect("files checked above");
            return Err(csv_error(csv_thread.join()));
        }
        Ok(())
    }

    /// Finishes both files and gives them their names: Parquet, then CSV.
    fn commit(self) -> io::Result<Vec<PathBuf>> {
        let Some(Files {
            parquet_path,
            parquet: (parquet_pending, parquet),
            csv_path,
            csv_chunks,
            csv_thread,
        }) = self.files
        else {
            return Ok(Vec::new());
        };
        drop(csv_chunks);
        let (csv_pending, mut csv) = csv_thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        parquet.finish()?.flush()?;
        parquet_pending.commit()?;
        csv.flush()?;
        drop(csv);
        csv_pending.commit()?;
        Ok(vec![parquet_path, csv_path])
    }
}

/// The error a CSV thread that stopped early ended with.
fn csv_error(ended: std::thread::Result<io::Result<CsvFile>>) -> io::Error {
    match ended {
        Ok(Err(error)) => error,
        Ok(Ok(_)) => io::Error::other("the CSV writer stopped before its input ended"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ColumnRef;

    /// A table of one column.
    struct Numbers(Vec<u64>);

    fn numbers(table: &Numbers) -> Vec<NamedColumn<'_>> {
        vec![("n", ColumnRef::U64(&table.0))]
    }

    /// The CSV lines are written on a thread of their own: when the disk fills under them, the
    /// export stops at the next chunk with the write's error, and leaves no file behind.
    #[test]
    fn a_full_disk_under_the_csv_stops_the_export_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let temporary = format!(".numbers.csv.twsleuth-{}.tmp", std::process::id());
        std::os::unix::fs::symlink("/dev/full", dir.path().join(temporary)).unwrap();
        let mut chunks_taken = 0;
        let error = std::thread::scope(|scope| {
            let mut export = TableExport::create(
                scope,
                Some(dir.path()),
                "numbers",
                numbers,
                &Numbers(vec![]),
            )?;
            // 100,000 numbers make ~700 KB of CSV: more than the file's write buffer.
            for chunk in 0..100u64 {
                export.write(Numbers((chunk * 100_000..(chunk + 1) * 100_000).collect()))?;
                chunks_taken += 1;
            }
            export.commit()
        })
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull, "{error}");
        assert!(
            chunks_taken <= 2,
            "{chunks_taken} chunks taken after the disk filled"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    fn rate_of(starts: impl IntoIterator<Item = i64>) -> Rate {
        let mut window = RateWindow::new();
        starts.into_iter().for_each(|s| window.add(s));
        window.finish()
    }

    #[test]
    fn a_short_burst_is_measured_over_its_own_span() {
        // 1,500 connections in 309 ms (the capture): 4,854/s, not "1,500/s".
        let rate = rate_of((0..1_500).map(|i| i * 309_000_000 / 1_499));
        assert_eq!(rate.span_ns, 309_000_000);
        assert_eq!(rate.window_ns, 30_900_000);
        let mean = rate.mean_per_s.unwrap();
        assert!((mean - 1_500.0 / 0.309).abs() < 1.0, "{mean}");
        // Even spacing: the busiest tenth holds a tenth, so the peak is the mean.
        let peak = rate.peak_per_s.unwrap();
        assert!(
            peak >= mean * 0.99 && peak <= mean * 1.01,
            "{peak} vs {mean}"
        );
    }

    #[test]
    fn a_long_capture_has_a_sliding_one_second_peak_above_its_mean() {
        // 10/s for 60 s, and a burst of 400 within 0.5 s straddling two calendar seconds
        // (200 in each): calendar seconds show 210, the sliding window 410.
        let steady = (0..600).map(|i| i * SECOND_NS / 10);
        let burst = (0..400).map(|i| 30 * SECOND_NS - SECOND_NS / 4 + i * SECOND_NS / 800);
        let mut starts: Vec<i64> = steady.chain(burst).collect();
        starts.sort_unstable();
        let rate = rate_of(starts);
        assert_eq!(rate.window_ns, SECOND_NS);
        assert_eq!(rate.peak_in_window, 410);
        assert_eq!(rate.peak_per_s, Some(410.0));
        let mean = rate.mean_per_s.unwrap();
        assert!((mean - 1_000.0 / 59.9).abs() < 0.01, "{mean}");
    }

    #[test]
    fn connections_at_one_instant_have_no_rate() {
        let rate = rate_of([5, 5, 5]);
        assert_eq!(
            (rate.span_ns, rate.peak_per_s, rate.mean_per_s),
            (0, None, None)
        );
        assert_eq!(rate_of([]).connections, 0);
    }
}
