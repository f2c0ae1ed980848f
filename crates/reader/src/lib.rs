//! Streaming capture reader: pcap and pcapng, plain or gzip/zstd, from files or standard input,
//! in constant memory, never panicking on bad bytes.
//!
//! - [`CaptureReader`] reads one input frame by frame ([`Frame`]: input index, 1-based frame
//!   number, nanosecond timestamp, link type, bytes). Damage after the first frame (a cut-short
//!   or corrupt record) ends the input and is kept as [`CaptureReader::damage`]; the frames
//!   before it are delivered.
//! - [`MergedCaptures`] merges several inputs by timestamp, like `mergecap`.
//! - [`ReadError`] names the input, the byte offset and the frames read before the error.
//!
//! ```
//! use twsleuth_reader::{CaptureReader, MergedCaptures};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/capture/en10mb.pcap");
//! let inputs = vec![CaptureReader::open(path, 0).unwrap(), CaptureReader::open(path, 1).unwrap()];
//! let mut merged = MergedCaptures::new(inputs);
//! let (mut frames, mut last_ts) = (0, i64::MIN);
//! while let Some(frame) = merged.next_frame() {
//!     assert!(frame.ts_ns >= last_ts);
//!     last_ts = frame.ts_ns;
//!     frames += 1;
//! }
//! assert_eq!(frames, 2 * merged.readers()[0].counters().frames);
//! ```
#![deny(missing_docs)]

mod capture;
mod error;
mod input;
mod link;
mod merge;

pub use capture::{CaptureReader, Frame, INITIAL_BUFFER_BYTES, MAX_RECORD_BYTES, ReaderCounters};
pub use error::{ReadError, ReadErrorKind};
pub use input::{CaptureFormat, Compression};
pub use link::LinkType;
pub use merge::MergedCaptures;
