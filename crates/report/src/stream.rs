//! The report's one pass over the records: connection and collision records come off disk in
//! `uid` order ([`crate::spill`]), a chunk at a time; each chunk becomes rows of the
//! `connections` and `collisions` exports (a Parquet row group, CSV lines) and feeds what the
//! rest of the report is made from ([`RecordDigest`]: the timeline, the charts' sample and
//! histograms, the capacity model's tuples, the collisions to show). Memory: a chunk, the
//! timeline, and fixed-size digests, whatever the number of records.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{DataFrame, ParquetWriter, PolarsError};
use twsleuth_flows::{
    ActiveCloser, CollisionRecord, ConnectionRecord, Findings, Outcome, Summary, TimeWaitPolicy,
};

use crate::charts::ChartSample;
use crate::content::CAPACITY_SOURCES;
use crate::export::{
    NamedColumn, collisions_columns, connections_columns, frame, write_csv_header, write_csv_rows,
};
use crate::files::Pending;
use crate::tables::{
    ConnectionsTable, Successor, SuccessorJoin, TimelineBuilder, TimelineTable, collisions_table,
    connections_table, time_wait_end,
};

/// Records turned into rows at a time: one Parquet row group (~20 MB of connection rows).
pub const CHUNK_RECORDS: usize = 65_536;

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
    /// The first (lowest `uid`).
    pub first: Option<CollisionRecord>,
    /// The last.
    pub last: Option<CollisionRecord>,
    /// The worst: never connected first, then the highest cost, then the earliest.
    pub worst: Option<CollisionRecord>,
    /// The first of each outcome, in [`Outcome::ALL`] order.
    pub first_of_outcome: Vec<CollisionRecord>,
    /// The first refused for each reason, in reason order.
    pub first_of_reason: Vec<CollisionRecord>,
}

impl CollisionDigest {
    fn add(&mut self, c: &CollisionRecord) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(c.clone());
        }
        self.last = Some(c.clone());
        let severity = |c: &CollisionRecord| {
            (
                matches!(c.outcome, Outcome::Failed | Outcome::Reset),
                c.cost_ns.unwrap_or(0),
                std::cmp::Reverse(c.ts_ns),
            )
        };
        // `>=`: of equally severe collisions, the last in `uid` order (as `max_by_key`).
        if self
            .worst
            .as_ref()
            .is_none_or(|worst| severity(c) >= severity(worst))
        {
            self.worst = Some(c.clone());
        }
        if !self.first_of_outcome.iter().any(|e| e.outcome == c.outcome) {
            self.first_of_outcome.push(c.clone());
            self.first_of_outcome.sort_by_key(|e| {
                Outcome::ALL
                    .iter()
                    .position(|o| *o == e.outcome)
                    .unwrap_or(usize::MAX)
            });
        }
        if let Some(reason) = c.reason {
            if !self
                .first_of_reason
                .iter()
                .any(|e| e.reason == Some(reason))
            {
                self.first_of_reason.push(c.clone());
                self.first_of_reason.sort_by_key(|e| e.reason);
            }
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
    /// Its connections the server closed first (or both at once): the server holds their
    /// TIME_WAIT.
    pub server_closed_first: u64,
    /// Its connections the source closed first alone: it holds their TIME_WAIT itself.
    pub client_closed_first: u64,
}

/// What the report is made from besides the summary: gathered record by record.
pub struct RecordDigest {
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
}

impl RecordDigest {
    /// The digest of findings held in memory (tests, the fuzz target), gathered as the report
    /// gathers it, without writing files.
    pub fn of(findings: &Findings, summary: &Summary, policy: &TimeWaitPolicy) -> RecordDigest {
        let mut successors: Vec<Successor> = findings
            .connections
            .iter()
            .filter_map(Successor::of)
            .collect();
        successors.sort_by_key(|s| (s.prev_uid, s.next_ts_ns));
        let mut per_source: BTreeMap<IpAddr, u64> = BTreeMap::new();
        for c in &findings.connections {
            *per_source.entry(c.orig_h).or_default() += 1;
        }
        let mut busiest: Vec<(u64, IpAddr)> =
            per_source.into_iter().map(|(ip, n)| (n, ip)).collect();
        busiest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let addresses: Vec<IpAddr> = busiest.iter().map(|(_, ip)| *ip).collect();
        let streams = RecordStreams {
            connections: findings.connections.iter().cloned().map(Ok),
            collisions: findings.collisions.iter().cloned().map(Ok),
            successors: successors.into_iter().map(Ok),
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
    K: Iterator<Item = io::Result<CollisionRecord>>,
    S: Iterator<Item = io::Result<Successor>>,
{
    if let Some(dir) = data_dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut written = Vec::new();

    // Collisions first: few next to connections, and the evidence is chosen from them.
    let mut collisions = CollisionDigest::default();
    let mut export = TableExport::create(
        data_dir,
        "collisions",
        &collisions_columns(&collisions_table(&[])),
    )?;
    let mut chunk = Vec::with_capacity(chunk_records);
    let mut records = streams.collisions.peekable();
    while records.peek().is_some() {
        chunk.clear();
        for record in records.by_ref().take(chunk_records.max(1)) {
            let record = record?;
            collisions.add(&record);
            chunk.push(record);
        }
        export.write(&collisions_columns(&collisions_table(&chunk)))?;
    }
    written.extend(export.commit()?);

    let mut connections = streams.connections.peekable();
    let capture_start_ns = match connections.peek() {
        Some(Ok(c)) => c.ts_ns,
        _ => 0,
    };
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
    let mut tuples: Vec<HashSet<(u16, IpAddr, u16)>> = vec![HashSet::new(); busy.len()];
    // (server closed first, the source closed first alone), per busy source.
    let mut closers: Vec<(u64, u64)> = vec![(0, 0); busy.len()];
    let mut digest = RecordDigest {
        timeline: TimelineTable::default(),
        charts: ChartSample::new(capture_start_ns, &chart_sources),
        capture_span: None,
        server_closed_first: 0,
        low_confidence: 0,
        tuples: Vec::new(),
        collisions,
    };
    let mut timeline = TimelineBuilder::new(timeline_sources.0, timeline_sources.1);
    let mut join = SuccessorJoin::new(streams.successors);
    let mut export = TableExport::create(
        data_dir,
        "connections",
        &connections_columns(&ConnectionsTable::default()),
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
            if let Some(i) = busy.iter().position(|ip| *ip == c.orig_h) {
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
        export.write(&connections_columns(&table))?;
    }
    written.splice(0..0, export.commit()?);
    digest.timeline = timeline.finish();
    digest.tuples = busy
        .into_iter()
        .zip(tuples)
        .zip(closers)
        .map(
            |((orig_h, tuples), (server_closed_first, client_closed_first))| {
                let destinations: BTreeSet<(IpAddr, u16)> =
                    tuples.iter().map(|&(_, ip, port)| (ip, port)).collect();
                SourceTuples {
                    orig_h,
                    tuples: tuples.len() as u64,
                    destinations: destinations.len() as u64,
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
struct TableExport(Option<Files>);

struct Files {
    parquet_path: PathBuf,
    parquet: (Pending, BatchedWriter<File>),
    csv_path: PathBuf,
    csv: (Pending, io::BufWriter<File>),
}

fn polars_error(e: PolarsError) -> io::Error {
    io::Error::other(e.to_string())
}

impl TableExport {
    /// Creates `data_dir/<name>.parquet` and `.csv` for a table of `columns` (no rows: they
    /// give the schema and the header).
    fn create(
        data_dir: Option<&Path>,
        name: &str,
        columns: &[NamedColumn<'_>],
    ) -> io::Result<Self> {
        let Some(data_dir) = data_dir else {
            return Ok(TableExport(None));
        };
        let parquet_path = data_dir.join(format!("{name}.parquet"));
        let (pending, writer) = Pending::create(&parquet_path)?;
        let schema = frame(columns).map_err(polars_error)?.schema().clone();
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        let batched = ParquetWriter::new(file)
            .batched(&schema)
            .map_err(polars_error)?;
        let csv_path = data_dir.join(format!("{name}.csv"));
        let (csv_pending, mut csv) = Pending::create(&csv_path)?;
        write_csv_header(columns, &mut csv)?;
        Ok(TableExport(Some(Files {
            parquet_path,
            parquet: (pending, batched),
            csv_path,
            csv: (csv_pending, csv),
        })))
    }

    /// Appends rows: a Parquet row group, CSV lines.
    fn write(&mut self, columns: &[NamedColumn<'_>]) -> io::Result<()> {
        let Some(files) = &mut self.0 else {
            return Ok(());
        };
        let chunk: DataFrame = frame(columns).map_err(polars_error)?;
        files.parquet.1.write_batch(&chunk).map_err(polars_error)?;
        write_csv_rows(columns, &mut files.csv.1)
    }

    /// Finishes both files and gives them their names: Parquet, then CSV.
    fn commit(self) -> io::Result<Vec<PathBuf>> {
        let Some(Files {
            parquet_path,
            parquet: (parquet_pending, batched),
            csv_path,
            csv: (csv_pending, mut csv),
        }) = self.0
        else {
            return Ok(Vec::new());
        };
        batched.finish().map_err(polars_error)?;
        drop(batched);
        parquet_pending.commit()?;
        csv.flush()?;
        drop(csv);
        csv_pending.commit()?;
        Ok(vec![parquet_path, csv_path])
    }
}
