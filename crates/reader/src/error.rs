//! Errors of the capture reader: each names the input and, where it applies, the byte offset
//! (in the decompressed stream) and the last good frame.

use std::{fmt, io};

/// Why an input could not be read, or where it stopped being readable.
///
/// An error from [`crate::CaptureReader::open`] means no frame could be read at all; the same
/// type is kept as [`crate::CaptureReader::damage`] when a file goes bad after some frames, whose
/// frames are still delivered.
#[derive(Debug, thiserror::Error)]
#[error("{input}: {kind}{}", Location { offset: *offset, frames_before: *frames_before })]
pub struct ReadError {
    /// The input as the user named it (`-` for standard input).
    pub input: String,
    /// Byte offset of the bad record in the (decompressed) capture stream, if known.
    pub offset: Option<u64>,
    /// How many frames of this input were read before the error.
    pub frames_before: u64,
    /// What went wrong.
    pub kind: ReadErrorKind,
}

/// What went wrong while reading an input.
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    /// The file could not be opened or read.
    #[error("cannot read: {0}")]
    Io(#[source] io::Error),
    /// The input holds no bytes at all.
    #[error("the file is empty (0 bytes), not a capture")]
    Empty,
    /// The input is not pcap or pcapng (possibly after decompression), nor a capture format
    /// that twsleuth can name.
    #[error("not a capture: {0}")]
    NotACapture(String),
    /// The input is a capture in a format twsleuth does not read; `advice` says how to convert
    /// it (or why that would not help).
    #[error("{format}, a format twsleuth does not read: {advice}")]
    ForeignFormat {
        /// The format, as its tool names it ("a Solaris snoop capture").
        format: String,
        /// The command that converts it, or what to do instead.
        advice: String,
    },
    /// A directory or archive that holds no capture at all.
    #[error("holds no capture twsleuth reads{0}")]
    NoCapture(String),
    /// A tar archive whose structure cannot be read.
    #[error("cannot read the tar archive: {0}")]
    Archive(String),
    /// A capture of a large set could not be opened when its frames came due: the open-file
    /// limit was reached.
    #[error(
        "could not be opened when its frames came due: {open} captures of the set overlap in \
         time and are open already, and the open-file limit (`ulimit -n`) allows no more; its \
         frames are missing from the results: raise the limit (e.g. `ulimit -n 65536`) or \
         merge fewer files at once"
    )]
    TooManyOpen {
        /// Captures open at that moment.
        open: usize,
    },
    /// More captures than frame references can number.
    #[error(
        "the inputs hold {members} captures, but at most {limit} can be read in one run (frames \
         name their file with 16 bits): merge some first, e.g. `mergecap -w part1.pcapng FILES...`"
    )]
    TooManyMembers {
        /// Captures found.
        members: usize,
        /// The most that can be read.
        limit: usize,
    },
    /// The file header is present but unusable.
    #[error("bad capture header: {0}")]
    BadHeader(String),
    /// The stream ends inside a record: a capture cut short (full disk, killed tcpdump).
    #[error("the file is cut short in the middle of a record; results cover the frames before it")]
    CutShort,
    /// A record or block header is inconsistent: the rest of the file cannot be framed.
    #[error("corrupt record: {0}; results cover the frames before it")]
    CorruptRecord(String),
    /// A record claims more bytes than any real capture has.
    #[error(
        "a record claims {claimed_bytes} bytes, more than the {limit_bytes}-byte limit: the file is corrupt; results cover the frames before it"
    )]
    RecordTooLarge {
        /// The record's claimed size.
        claimed_bytes: u64,
        /// The reader's cap.
        limit_bytes: u64,
    },
    /// The compressed stream is damaged.
    #[error("decompression failed: {0}; results cover the frames before it")]
    Decompress(#[source] io::Error),
}

struct Location {
    offset: Option<u64>,
    frames_before: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(offset) = self.offset {
            write!(f, " (at byte offset {offset}")?;
            if self.frames_before > 0 {
                write!(f, ", after frame {}", self.frames_before)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}
