//! Records put in order in bounded memory: they arrive in batches as their connections end,
//! out of the order the connections began; each batch joins a buffer, and a full buffer is
//! sorted and appended to an anonymous temporary file as a "run"; at the end the runs and the
//! buffer are merged, record by record. Disk: every record once, in bincode.
//!
//! All runs share one file, so a spill holds one file descriptor however long the capture. A
//! file per run took 385 for the records of 10 M connections (runs of 16 MiB: 176 of
//! connections, 171 of collisions; 38 of successors, of 4 MiB), and a report of some 27 M
//! connections would have run out of descriptors at the default limit of 1,024.
//!
//! Memory: the buffer while records come. In the merge, a record and a read buffer per run,
//! the read buffers shrinking as runs grow in number so that together they stay within
//! [`MERGE_READ_BYTES`] (at 64 KiB each, the 385 runs' took 24 MiB); the buffer itself only
//! when no run was written (otherwise it is written as the last run).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use twsleuth_flows::sort_by_key_moving_once;

/// The buffer's default size: a run of this many bytes of records is written at a time.
pub const DEFAULT_BUFFER_BYTES: usize = 16 << 20;
/// A run's write buffer: a run is megabytes, written in calls of this size.
const RUN_WRITE_BYTES: usize = 256 << 10;
/// The read buffers of all the runs in the merge together, at most (unless each would be
/// under a page, 4 KiB).
pub const MERGE_READ_BYTES: usize = 4 << 20;
/// A run's read buffer in the merge, at most: what each had when each run was a file of its
/// own.
const MAX_RUN_READ_BYTES: usize = 64 << 10;
/// A run's read buffer in the merge, at least: a page.
const MIN_RUN_READ_BYTES: usize = 4 << 10;

/// Integers at their full width rather than as varints: encoding and decoding the bench
/// capture's runs took ~3% less of `report`'s time (paired), and the runs ~54% more disk
/// (205 MB against 133 MB at their largest; some 4 GB at 10 M connections).
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_fixed_int_encoding()
}

/// Records of type `T`, to be given back in the order of `key`.
pub struct SortedSpill<T> {
    key: fn(&T) -> u64,
    buffer: Vec<T>,
    buffer_records: usize,
    /// The runs' file, once there is a run.
    file: Option<File>,
    runs: Vec<Run>,
}

/// A run: where it lies in the spill's file, and how many records it holds.
struct Run {
    start: u64,
    end: u64,
    records: u64,
}

impl<T: Serialize + DeserializeOwned + Send> SortedSpill<T> {
    /// An empty spill that writes a run when its buffer holds `buffer_bytes` of records.
    pub fn new(key: fn(&T) -> u64, buffer_bytes: usize) -> SortedSpill<T> {
        SortedSpill {
            key,
            buffer: Vec::new(),
            buffer_records: (buffer_bytes / size_of::<T>().max(1)).max(1),
            file: None,
            runs: Vec::new(),
        }
    }

    /// Adds records, in any order.
    pub fn extend(&mut self, records: impl IntoIterator<Item = T>) -> io::Result<()> {
        // The whole buffer at once, on the first record, rather than grown by doubling and
        // copied into fresh pages each time. Its pages are touched only as records fill it.
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(self.buffer_records);
        }
        for record in records {
            self.buffer.push(record);
            if self.buffer.len() >= self.buffer_records {
                self.write_run()?;
            }
        }
        Ok(())
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn write_run(&mut self) -> io::Result<()> {
        sort_by_key_moving_once(&mut self.buffer, self.key);
        let records = self.buffer.len() as u64;
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(tempfile::tempfile()?),
        };
        // At the end of the file, wherever a run that failed half-written (a full disk) left
        // it: the runs before stay readable.
        let start = file.seek(SeekFrom::End(0))?;
        // Encoded into a buffer, written when the next record does not fit: bincode's writer
        // over a `BufWriter` made a call for every field.
        let mut encoded = vec![0; RUN_WRITE_BYTES];
        let mut used = 0;
        let mut bytes = 0;
        for record in self.buffer.drain(..) {
            loop {
                match bincode::serde::encode_into_slice(
                    &record,
                    &mut encoded[used..],
                    bincode_config(),
                ) {
                    Ok(length) => {
                        used += length;
                        break;
                    }
                    Err(bincode::error::EncodeError::UnexpectedEnd) if used > 0 => {
                        file.write_all(&encoded[..used])?;
                        bytes += used as u64;
                        used = 0;
                    }
                    // A record longer than the buffer.
                    Err(bincode::error::EncodeError::UnexpectedEnd) => {
                        encoded.resize(encoded.len() * 2, 0);
                    }
                    Err(error) => return Err(io::Error::other(error)),
                }
            }
        }
        file.write_all(&encoded[..used])?;
        bytes += used as u64;
        self.runs.push(Run {
            start,
            end: start + bytes,
            records,
        });
        Ok(())
    }

    /// Every record, in order: the runs merged with what the buffer holds.
    pub fn into_sorted(mut self) -> io::Result<Sorted<T>> {
        // Once a run is written the buffer's pages have all been touched, and the merge would
        // hold them to its end (16 MiB each for the connections and the collisions, through
        // the whole export of a report): what it holds goes to disk as the last run instead.
        if self.file.is_some() && !self.buffer.is_empty() {
            self.write_run()?;
        }
        let sources = match self.file {
            None => {
                sort_by_key_moving_once(&mut self.buffer, self.key);
                vec![Source::Buffer(self.buffer.into_iter())]
            }
            Some(file) => {
                let file = Arc::new(file);
                let read_bytes = run_read_bytes(self.runs.len());
                self.runs
                    .iter()
                    .map(|run| {
                        Source::Run(RunSource {
                            file: RunReader {
                                file: Arc::clone(&file),
                                position: run.start,
                                end: run.end,
                            },
                            buffer: vec![0; read_bytes],
                            unread: 0..0,
                            left: run.records,
                        })
                    })
                    .collect()
            }
        };
        let mut sorted = Sorted {
            key: self.key,
            heads: Vec::with_capacity(sources.len()),
            sources,
            heap: BinaryHeap::new(),
        };
        for source in 0..sorted.sources.len() {
            let head = sorted.sources[source].next()?;
            sorted.heads.push(head);
            sorted.push_head(source);
        }
        Ok(sorted)
    }
}

/// Each run's read buffer in a merge of `runs` runs.
fn run_read_bytes(runs: usize) -> usize {
    (MERGE_READ_BYTES / runs.max(1)).clamp(MIN_RUN_READ_BYTES, MAX_RUN_READ_BYTES)
}

/// Where the merge takes records from.
enum Source<T> {
    Run(RunSource),
    Buffer(std::vec::IntoIter<T>),
}

/// One run of the spill's file, read a buffer at a time and decoded from the buffer: decoding
/// straight from a `BufReader` made a call for every field (the merge's reading took 12% of
/// `report`'s CPU on the bench capture, 6% this way).
struct RunSource {
    file: RunReader,
    buffer: Vec<u8>,
    /// The buffer's bytes not decoded yet.
    unread: std::ops::Range<usize>,
    /// Records not decoded yet.
    left: u64,
}

impl RunSource {
    fn next<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        if self.left == 0 {
            return Ok(None);
        }
        loop {
            let unread = &self.buffer[self.unread.clone()];
            match bincode::serde::decode_from_slice(unread, bincode_config()) {
                Ok((record, used)) => {
                    self.unread.start += used;
                    self.left -= 1;
                    return Ok(Some(record));
                }
                // The record goes on past the buffer: read on and decode it again, whole.
                Err(bincode::error::DecodeError::UnexpectedEnd { .. }) => self.refill()?,
                Err(error) => return Err(io::Error::other(error)),
            }
        }
    }

    /// Moves the bytes not decoded to the buffer's start and reads after them, doubling the
    /// buffer when one record fills it.
    fn refill(&mut self) -> io::Result<()> {
        self.buffer.copy_within(self.unread.clone(), 0);
        self.unread = 0..self.unread.len();
        if self.unread.end == self.buffer.len() {
            self.buffer.resize(self.buffer.len() * 2, 0);
        }
        let read = self.file.read(&mut self.buffer[self.unread.end..])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("a run of the spill ends {} records short", self.left),
            ));
        }
        self.unread.end += read;
        Ok(())
    }
}

/// Reads one run of the spill's file, the runs sharing it: each read seeks to where this
/// run's reading left off.
struct RunReader {
    file: Arc<File>,
    position: u64,
    end: u64,
}

impl Read for RunReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.position).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let mut file = &*self.file;
        file.seek(SeekFrom::Start(self.position))?;
        let read = file.read(&mut buf[..want])?;
        self.position += read as u64;
        Ok(read)
    }
}

impl<T: DeserializeOwned> Source<T> {
    fn next(&mut self) -> io::Result<Option<T>> {
        match self {
            Source::Run(run) => run.next(),
            Source::Buffer(records) => Ok(records.next()),
        }
    }
}

/// The records of a [`SortedSpill`], in order (ties in the order of the runs).
pub struct Sorted<T> {
    key: fn(&T) -> u64,
    sources: Vec<Source<T>>,
    /// The next record of each source.
    heads: Vec<Option<T>>,
    /// (key, source) of each source's next record, smallest first.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl<T: DeserializeOwned> Sorted<T> {
    fn push_head(&mut self, source: usize) {
        if let Some(head) = &self.heads[source] {
            self.heap.push(Reverse(((self.key)(head), source)));
        }
    }
}

impl<T: DeserializeOwned> Iterator for Sorted<T> {
    type Item = io::Result<T>;

    fn next(&mut self) -> Option<io::Result<T>> {
        let Reverse((_, source)) = self.heap.pop()?;
        let record = self.heads[source].take();
        match self.sources[source].next() {
            Ok(next) => {
                self.heads[source] = next;
                self.push_head(source);
            }
            Err(error) => return Some(Err(error)),
        }
        record.map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_across_runs_and_the_buffer() {
        let mut state = 99u64;
        let mut values: Vec<(u64, String)> = (0..10_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 40, format!("record {i}"))
            })
            .collect();
        // A buffer of about 300 records: some 30 runs.
        let mut spill = SortedSpill::new(|r: &(u64, String)| r.0, 300 * size_of::<(u64, String)>());
        for batch in values.chunks(777) {
            spill.extend(batch.to_vec()).unwrap();
        }
        assert!(spill.runs() >= 30, "{} runs", spill.runs());
        let sorted: Vec<(u64, String)> = spill.into_sorted().unwrap().map(Result::unwrap).collect();
        values.sort_by_key(|r| r.0);
        assert_eq!(sorted.len(), values.len());
        assert!(sorted.windows(2).all(|w| w[0].0 <= w[1].0));
        let mut by_content = sorted.clone();
        by_content.sort();
        let mut expected = values.clone();
        expected.sort();
        assert_eq!(by_content, expected);
    }

    /// Open file descriptors of this process.
    fn open_files() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn runs_share_one_file_and_their_read_buffers_a_budget() {
        let before = open_files();
        // A record a run: 600 runs, a file each before.
        let mut spill = SortedSpill::new(|v: &u64| *v, size_of::<u64>());
        spill.extend((0..600u64).rev()).unwrap();
        assert_eq!(spill.runs(), 600);
        let during = open_files();
        // Other tests run beside this one and open files of their own, but not hundreds.
        assert!(
            during < before + 50,
            "{before} open files before, {during} with the spill"
        );
        let sorted: Vec<u64> = spill.into_sorted().unwrap().map(Result::unwrap).collect();
        assert_eq!(sorted, (0..600).collect::<Vec<_>>());

        assert_eq!(run_read_bytes(1), MAX_RUN_READ_BYTES);
        assert!(600 * run_read_bytes(600) <= MERGE_READ_BYTES);
        assert_eq!(run_read_bytes(100_000), MIN_RUN_READ_BYTES);
    }

    #[test]
    fn records_longer_than_a_read_buffer_come_back_whole() {
        // Enough runs that each reads through the smallest buffer, 4 KiB; records of up to
        // 3 buffers, so that most cross a buffer's end and some are longer than it.
        let runs = MERGE_READ_BYTES / MIN_RUN_READ_BYTES * 2;
        let record = |key: u64| {
            (
                key,
                "x".repeat((key as usize * 7919) % (3 * MIN_RUN_READ_BYTES)),
            )
        };
        let mut spill = SortedSpill::new(|r: &(u64, String)| r.0, 3 * size_of::<(u64, String)>());
        spill
            .extend((0..3 * runs as u64).rev().map(record))
            .unwrap();
        assert_eq!(spill.runs(), runs);
        assert_eq!(run_read_bytes(runs), MIN_RUN_READ_BYTES);
        let sorted: Vec<(u64, String)> = spill.into_sorted().unwrap().map(Result::unwrap).collect();
        assert_eq!(sorted, (0..3 * runs as u64).map(record).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_longer_than_the_write_buffer_is_written_whole() {
        let long = |key: u64| (key, "x".repeat(2 * RUN_WRITE_BYTES + 7));
        let mut spill = SortedSpill::new(|r: &(u64, String)| r.0, 2 * size_of::<(u64, String)>());
        // Runs of two: a short record before a long one, and a long one first.
        spill
            .extend([(5, "e".to_string()), long(4), long(3), (2, "b".to_string())])
            .unwrap();
        assert_eq!(spill.runs(), 2);
        let keys_and_lengths: Vec<(u64, usize)> = (spill.into_sorted().unwrap())
            .map(|r| r.map(|(key, text)| (key, text.len())).unwrap())
            .collect();
        let long_length = long(0).1.len();
        assert_eq!(
            keys_and_lengths,
            [(2, 1), (3, long_length), (4, long_length), (5, 1)]
        );
    }

    /// A record whose serialisation fails at one key, as a write to a full disk would.
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Picky(u64, String);

    const POISON: u64 = 800;

    impl Serialize for Picky {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if self.0 == POISON {
                return Err(serde::ser::Error::custom("cannot write"));
            }
            (self.0, &self.1).serialize(s)
        }
    }

    #[test]
    fn a_run_that_failed_half_written_leaves_the_others_readable() {
        let picky = |keys: std::ops::Range<u64>| keys.map(|k| Picky(k, "x".repeat(100)));
        let mut spill = SortedSpill::new(|p: &Picky| p.0, 500 * size_of::<Picky>());
        spill.extend(picky(0..500)).unwrap();
        // Fails at its 301st record, once some 30 KB of the run are in the file.
        assert!(spill.extend(picky(500..1000)).is_err());
        spill.extend(picky(1000..1500)).unwrap();
        assert_eq!(spill.runs(), 2);
        let keys: Vec<u64> = spill.into_sorted().unwrap().map(|p| p.unwrap().0).collect();
        assert_eq!(keys, (0..500).chain(1000..1500).collect::<Vec<_>>());
    }

    #[test]
    fn without_runs_the_buffer_alone_is_sorted() {
        let mut spill = SortedSpill::new(|v: &u64| *v, DEFAULT_BUFFER_BYTES);
        spill.extend([5u64, 3, 9, 1]).unwrap();
        assert_eq!(spill.runs(), 0);
        let sorted: Vec<u64> = spill.into_sorted().unwrap().map(Result::unwrap).collect();
        assert_eq!(sorted, [1, 3, 5, 9]);
    }
}
