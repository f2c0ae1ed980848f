//! Several inputs read as one stream, merged by timestamp like `mergecap`, in bounded memory
//! and with few files open at a time.
//!
//! A set of many captures (a ring of hundreds of tcpdump files, one capture per CPU core) is
//! read with a k-way merge on each capture's next timestamp. Before the merge, each capture is
//! opened once for its first frame's timestamp; in a set of more than [`KEEP_OPEN`] captures
//! each is then closed, and opened again only when the merge reaches that timestamp: only the
//! captures that overlap the merge's current time are open, so a ring of thousands of files
//! reads with a few descriptors. A capture is closed as soon as it is done. If more captures
//! overlap in time than the open-file limit (`ulimit -n`) allows, the soft limit is raised to
//! the hard one (as Go's runtime does at start; Linux's hard limit is often far above the soft
//! 1024); past the hard limit, the captures that cannot be opened when their frames come due
//! are reported as damaged (their frames are missing) with the advice to raise the limit. All
//! members of one tar archive share one descriptor.
//!
//! Memory: each open capture has a read buffer of [`crate::INITIAL_BUFFER_BYTES`], shrunk for
//! large sets so that all buffers together stay within [`SET_BUFFER_BUDGET_BYTES`] (but never
//! below [`crate::MIN_BUFFER_BYTES`]); a zstd-compressed capture adds its decoder's window
//! (8 MiB at the highest levels).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::capture::{CaptureReader, Frame, INITIAL_BUFFER_BYTES, MIN_BUFFER_BYTES};
use crate::coverage::CaptureSetReport;
use crate::error::{ReadError, ReadErrorKind};
use crate::set::{CaptureSet, Skipped};

/// Sets of up to this many captures keep every capture open from the start (as a plain list
/// of files always was); larger ones open each when its frames come due.
pub const KEEP_OPEN: usize = 64;
/// What the read buffers of one set may take together.
pub const SET_BUFFER_BUDGET_BYTES: usize = 256 << 20;
/// `EMFILE` ("too many open files") on Linux, macOS and the BSDs.
const EMFILE: i32 = 24;

/// Frames of several inputs in timestamp order.
///
/// Each input is assumed to be in time order, as captures are; frames with equal timestamps
/// come in input order, and an input whose clock steps back is still read in its own order.
/// Every frame keeps its input index and its frame number within that input.
pub struct MergedCaptures {
    readers: Vec<CaptureReader>,
    /// The next frame of each input that has one: (timestamp, input index). An input set
    /// aside is here with its first frame's timestamp, and opened when it is popped.
    heads: BinaryHeap<Reverse<(i64, usize)>>,
    /// The input whose frame was delivered last; it advances on the next call.
    delivered: Option<usize>,
    set: CaptureSet,
    skipped: Vec<Skipped>,
    /// The most inputs open at once.
    most_open: usize,
}

impl MergedCaptures {
    /// Merges the given inputs, all already open.
    pub fn new(mut readers: Vec<CaptureReader>) -> MergedCaptures {
        let mut heads = BinaryHeap::with_capacity(readers.len());
        for (index, reader) in readers.iter_mut().enumerate() {
            if reader.advance() {
                if let Some(frame) = reader.current() {
                    heads.push(Reverse((frame.ts_ns, index)));
                }
            }
        }
        let most_open = readers.len();
        MergedCaptures {
            readers,
            heads,
            delivered: None,
            set: CaptureSet::default(),
            skipped: Vec::new(),
            most_open,
        }
    }

    /// Opens and merges the captures of a set. A capture the user named that cannot be read
    /// is an error; one found in a directory or archive is skipped (see
    /// [`MergedCaptures::skipped`]). With `hashing`, each capture's bytes are hashed as read.
    pub fn from_set(set: &CaptureSet, hashing: bool) -> Result<MergedCaptures, ReadError> {
        let members = set.members();
        let buffer_bytes = (SET_BUFFER_BUDGET_BYTES / members.len().max(1))
            .clamp(MIN_BUFFER_BYTES, INITIAL_BUFFER_BYTES);
        let lazy = members.len() > KEEP_OPEN;
        let mut readers = Vec::with_capacity(members.len());
        let mut heads = BinaryHeap::with_capacity(members.len());
        let mut skipped = set.skipped().to_vec();
        for source in members {
            // Numbered by position among the captures read: a skipped member leaves no gap.
            let index = readers.len();
            let file_index = u16::try_from(index).map_err(|_| ReadError {
                input: source.name().to_string(),
                offset: None,
                frames_before: 0,
                kind: ReadErrorKind::TooManyMembers {
                    members: members.len(),
                    limit: usize::from(u16::MAX),
                },
            })?;
            let mut reader =
                match CaptureReader::open_source(source, file_index, hashing, buffer_bytes) {
                    Ok(reader) => reader,
                    Err(error) if source.in_set() => {
                        skipped.push(Skipped {
                            name: source.name().to_string(),
                            reason: error.kind.to_string(),
                        });
                        continue;
                    }
                    Err(error) => return Err(error),
                };
            if reader.advance() {
                if let Some(frame) = reader.current() {
                    heads.push(Reverse((frame.ts_ns, index)));
                }
                if lazy {
                    reader.set_aside();
                }
            } else {
                reader.close();
            }
            readers.push(reader);
        }
        let most_open = readers.iter().filter(|r| r.is_open()).count();
        Ok(MergedCaptures {
            readers,
            heads,
            delivered: None,
            set: set.clone(),
            skipped,
            most_open,
        })
    }

    /// The next frame in timestamp order, or `None` when every input is done or reading was
    /// [interrupted](crate::interrupt).
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        if crate::interrupted() {
            return None;
        }
        if let Some(index) = self.delivered.take() {
            let reader = &mut self.readers[index];
            if reader.advance() {
                if let Some(frame) = reader.current() {
                    let head = (frame.ts_ns, index);
                    // Still ahead of every other input (always, with one input): delivered
                    // without going through the heap.
                    if self.heads.peek().is_none_or(|Reverse(next)| head < *next) {
                        self.delivered = Some(index);
                        return self.readers[index].current();
                    }
                    self.heads.push(Reverse(head));
                }
            } else {
                // Done: its descriptor and buffer go back at once.
                reader.close();
            }
        }
        loop {
            let Reverse((ts_ns, index)) = self.heads.pop()?;
            if self.readers[index].is_set_aside() && !self.bring_back(index, ts_ns) {
                continue;
            }
            self.delivered = Some(index);
            return self.readers[index].current();
        }
    }

    /// Opens a set-aside input whose first frame came due; false when it cannot be read now
    /// (its damage says why) or its first frame is not the one seen before (it is queued
    /// again at its new time).
    fn bring_back(&mut self, index: usize, ts_ns: i64) -> bool {
        let open_now = self.readers.iter().filter(|r| r.is_open()).count();
        let reader = &mut self.readers[index];
        let mut reopened = reader.reopen();
        if !reopened && is_emfile(reader) && raise_open_file_limit() {
            reopened = reader.reopen();
        }
        if !reopened {
            if let Some(damage) = reader.damage_mut() {
                if matches!(&damage.kind, ReadErrorKind::Io(e) if e.raw_os_error() == Some(EMFILE))
                {
                    damage.kind = ReadErrorKind::TooManyOpen { open: open_now };
                }
            }
            return false;
        }
        self.most_open = self.most_open.max(open_now + 1);
        if !reader.advance() {
            reader.close();
            return false;
        }
        match reader.current() {
            Some(frame) if frame.ts_ns == ts_ns => true,
            Some(frame) => {
                // The file changed since it was first opened: merge it where it now starts.
                let head = (frame.ts_ns, index);
                self.heads.push(Reverse(head));
                false
            }
            None => false,
        }
    }

    /// The inputs, for their counters and damage.
    pub fn readers(&self) -> &[CaptureReader] {
        &self.readers
    }

    /// The set the inputs came from (empty when built by [`MergedCaptures::new`]).
    pub fn set(&self) -> &CaptureSet {
        &self.set
    }

    /// Files of directories and archives that were not read, with the reason.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The most inputs that were open at the same time.
    pub fn most_open(&self) -> usize {
        self.most_open
    }

    /// What the inputs' time ranges show, so far: gaps, overlaps, rings that wrapped.
    pub fn set_report(&self) -> CaptureSetReport {
        CaptureSetReport::new(&self.readers)
    }

    /// Bytes read from all inputs so far (compressed bytes for compressed input).
    pub fn raw_bytes_read(&self) -> u64 {
        self.readers.iter().map(CaptureReader::raw_bytes_read).sum()
    }
}

/// Whether the reader failed to open for want of file descriptors.
fn is_emfile(reader: &CaptureReader) -> bool {
    matches!(
        reader.damage().map(|d| &d.kind),
        Some(ReadErrorKind::Io(e)) if e.raw_os_error() == Some(EMFILE)
    )
}

/// Raises the soft open-file limit to the hard one; false when it already was there or could
/// not be raised.
#[cfg(unix)]
fn raise_open_file_limit() -> bool {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return false;
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .is_ok()
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> bool {
    false
}
