//! Records put in order in bounded memory: they arrive in batches as their connections end,
//! out of the order the connections began; each batch joins a buffer, and a full buffer is
//! sorted and written to an anonymous temporary file (a "run"); at the end the runs and the
//! buffer are merged, record by record. Memory: the buffer, plus one record and a read buffer
//! per run, whatever the number of records. Disk: every record once, in bincode.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom};

use serde::Serialize;
use serde::de::DeserializeOwned;
use twsleuth_flows::sort_by_key_moving_once;

/// The buffer's default size: a run of this many bytes of records is written at a time.
pub const DEFAULT_BUFFER_BYTES: usize = 16 << 20;
/// A run's read buffer during the merge.
const RUN_READ_BYTES: usize = 64 << 10;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Records of type `T`, to be given back in the order of `key`.
pub struct SortedSpill<T> {
    key: fn(&T) -> u64,
    buffer: Vec<T>,
    buffer_records: usize,
    runs: Vec<(File, u64)>,
}

impl<T: Serialize + DeserializeOwned + Send> SortedSpill<T> {
    /// An empty spill that writes a run when its buffer holds `buffer_bytes` of records.
    pub fn new(key: fn(&T) -> u64, buffer_bytes: usize) -> SortedSpill<T> {
        SortedSpill {
            key,
            buffer: Vec::new(),
            buffer_records: (buffer_bytes / size_of::<T>().max(1)).max(1),
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
        let mut file = tempfile::tempfile()?;
        let mut writer = BufWriter::new(&mut file);
        for record in self.buffer.drain(..) {
            bincode::serde::encode_into_std_write(&record, &mut writer, bincode_config())
                .map_err(io::Error::other)?;
        }
        drop(writer);
        file.seek(SeekFrom::Start(0))?;
        self.runs.push((file, records));
        Ok(())
    }

    /// Every record, in order: the runs merged with what the buffer holds.
    pub fn into_sorted(mut self) -> io::Result<Sorted<T>> {
        sort_by_key_moving_once(&mut self.buffer, self.key);
        let mut sources: Vec<Source<T>> = self
            .runs
            .into_iter()
            .map(|(file, records)| Source::Run {
                reader: BufReader::with_capacity(RUN_READ_BYTES, file),
                left: records,
            })
            .collect();
        sources.push(Source::Buffer(self.buffer.into_iter()));
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

/// Where the merge takes records from.
enum Source<T> {
    Run { reader: BufReader<File>, left: u64 },
    Buffer(std::vec::IntoIter<T>),
}

impl<T: DeserializeOwned> Source<T> {
    fn next(&mut self) -> io::Result<Option<T>> {
        match self {
            Source::Run { reader, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                *left -= 1;
                bincode::serde::decode_from_std_read(reader, bincode_config())
                    .map(Some)
                    .map_err(io::Error::other)
            }
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

    #[test]
    fn without_runs_the_buffer_alone_is_sorted() {
        let mut spill = SortedSpill::new(|v: &u64| *v, DEFAULT_BUFFER_BYTES);
        spill.extend([5u64, 3, 9, 1]).unwrap();
        assert_eq!(spill.runs(), 0);
        let sorted: Vec<u64> = spill.into_sorted().unwrap().map(Result::unwrap).collect();
        assert_eq!(sorted, [1, 3, 5, 9]);
    }
}
