//! Streaming capture reader: pcap and pcapng, plain or gzip/zstd, from files or standard input,
//! in constant memory, never panicking on bad bytes.
//!
//! - [`CaptureReader`] reads one input frame by frame ([`Frame`]: input index, 1-based frame
//!   number, nanosecond timestamp, link type, bytes). Damage after the first frame (a cut-short
//!   or corrupt record) ends the input and is kept as [`CaptureReader::damage`]; the frames
//!   before it are delivered.
//! - [`MergedCaptures`] merges several inputs by timestamp, like `mergecap`, opening the
//!   captures of a large set only when their frames come due.
//! - [`CaptureSet`] expands what the user named (files, directories, tar archives plain or
//!   compressed) into captures, each an input of its own (`dir/cap.pcap7`,
//!   `a10.tgz:core3.pcap`), and lists the files that are not captures; [`CaptureSetReport`]
//!   says what their time ranges show (gaps, overlaps, a tcpdump ring that wrapped).
//! - [`ReadError`] names the input, the byte offset and the frames read before the error; a
//!   capture format of another tool is named with the command that converts it.
//!
//! ```
//! use twsleuth_reader::{CaptureReader, MergedCaptures};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/capture/en10mb.pcap");
//! let inputs = vec![CaptureReader::open(path, 0).unwrap(), CaptureReader::open(path, 1).unwrap()];
//! let mut merged = MergedCaptures::new(inputs);
//! // Each input's frames come in its own order, numbered from 1, interleaved by timestamp.
//! let mut last_number = [0, 0];
//! while let Some(frame) = merged.next_frame() {
//!     let input = usize::from(frame.file_index);
//!     assert!(frame.number > last_number[input]);
//!     last_number[input] = frame.number;
//! }
//! assert_eq!(last_number, [613, 613]);
//! ```
#![deny(missing_docs)]

mod capture;
mod coverage;
mod error;
mod hash;
mod input;
mod interrupt;
mod link;
mod merge;
mod set;
mod sniff;
mod source;

pub use capture::{
    CaptureReader, Frame, INITIAL_BUFFER_BYTES, MAX_RECORD_BYTES, MIN_BUFFER_BYTES, ReaderCounters,
};
pub use coverage::{CaptureSetReport, FileSpan, GAP_FLOOR_NS, Meeting, Ring, RingWrap, Transition};
pub use error::{ReadError, ReadErrorKind};
pub use input::{CaptureFormat, Compression};
pub use interrupt::{interrupt, interrupted, pumped_stdin, resume};
pub use link::LinkType;
pub use merge::{KEEP_OPEN, MergedCaptures, SET_BUFFER_BUDGET_BYTES};
pub use set::{CaptureSet, MAX_MEMBERS, SPILL_MEMORY_BYTES, Skipped, natural_cmp};
pub use source::CaptureSource;
