//! [`CaptureReader`]: one input read frame by frame through pcap-parser's streaming readers,
//! with a buffer that does not grow with the file.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapBlock, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use crate::error::{ReadError, ReadErrorKind};
use crate::input::{
    CaptureFormat, Compression, OpenedInput, SourceShared, open_input, open_stream,
};
use crate::link::LinkType;
use crate::source::CaptureSource;

/// Initial size of the read buffer. Records larger than this grow it (up to
/// [`MAX_RECORD_BYTES`]); it never shrinks, and never grows with the number of records.
pub const INITIAL_BUFFER_BYTES: usize = 1 << 20;
/// The smallest read buffer of a capture in a large set (see [`crate::MergedCaptures`]): large
/// records still grow it.
pub const MIN_BUFFER_BYTES: usize = 64 << 10;
/// The largest record or block accepted. Anything larger is treated as corruption.
pub const MAX_RECORD_BYTES: usize = 256 << 20;
/// Wireshark's `WTAP_MAX_PACKET_SIZE_STANDARD`: a classic pcap record claiming more captured
/// bytes than this (and than the file's snaplen) has a corrupt header.
const MAX_PLAUSIBLE_PCAP_CAPLEN: u32 = 262_144;
/// A classic pcap record header: seconds, fraction, captured and original lengths.
const PCAP_RECORD_HEADER_BYTES: usize = 16;
/// pcapng's obsolete Packet Block (spec draft, appendix "Packet Block (obsolete!)"), written
/// by early ntar-based tools: an EPB with a 16-bit interface id and a 16-bit drop count.
const OBSOLETE_PACKET_BLOCK: u32 = 2;
/// pcapng's `opt_comment` option code, in every block.
const OPT_COMMENT: u16 = 1;
/// Section comments kept per input; a file with more (a hostile one: each section has at
/// most one) has the rest counted only.
const MAX_SECTION_COMMENTS: usize = 64;

/// One frame of a capture, borrowed from the reader's buffer until the reader advances.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Which input of the run it came from (the order in which inputs were named).
    pub file_index: u16,
    /// 1-based frame number within its input, as Wireshark numbers frames.
    pub number: u64,
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Link-layer type of the interface the frame was captured on.
    pub link_type: LinkType,
    /// Length of the frame on the wire (the captured `data` may be shorter: snaplen).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// The packet's comment (pcapng `opt_comment`, several joined by newlines), as written:
    /// escape it before showing it. Invalid UTF-8 is replaced by U+FFFD.
    pub comment: Option<&'a str>,
    /// The comment of the pcapng section the frame is in (Section Header Block
    /// `opt_comment`), often the capturing tool's note on the whole capture.
    pub section_comment: Option<&'a str>,
}

/// Per-interface facts needed to read packet blocks: pcapng IDB fields, or the pcap header.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: LinkType,
    /// Timestamp units per second (`if_tsresol`).
    units_per_second: u64,
    /// Nanoseconds per unit when a whole number (1 µs, 1 ns resolutions), else 0: worked out
    /// once, not divided for every frame.
    ns_per_unit: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_s: i64,
    snaplen: u32,
}

impl Interface {
    fn new(link_type: LinkType, units_per_second: u64, offset_s: i64, snaplen: u32) -> Interface {
        let units_per_second = units_per_second.max(1);
        let ns_per_unit = if 1_000_000_000 % units_per_second == 0 {
            1_000_000_000 / units_per_second
        } else {
            0
        };
        Interface {
            link_type,
            units_per_second,
            ns_per_unit,
            offset_s,
            snaplen,
        }
    }
}

/// Where the current frame lies in the parser's buffer, without borrowing it.
#[derive(Clone, Copy, Debug)]
struct FrameSpan {
    number: u64,
    ts_ns: i64,
    link_type: LinkType,
    orig_len: u32,
    data_start: usize,
    data_len: usize,
    comment: CommentSpan,
}

/// Where the current frame's comment is: frames are produced at millions per second, so
/// nothing is allocated for the (usual) frame without one.
#[derive(Clone, Copy, Debug, Default)]
enum CommentSpan {
    #[default]
    None,
    /// Valid UTF-8 at these bytes of the parser's buffer.
    Buffer { start: usize, len: usize },
    /// In [`CaptureReader::owned_comment`] (several comments, or invalid UTF-8 made valid).
    Owned,
}

enum Parser {
    Pcap(LegacyPcapReader<Box<dyn Read + Send>>),
    PcapNg(PcapNGReader<Box<dyn Read + Send>>),
    /// Done with, or set aside until its frames come due: no file descriptor, no buffer.
    Closed,
}

impl Parser {
    fn iter(&mut self) -> Option<&mut dyn PcapReaderIterator> {
        match self {
            Parser::Pcap(reader) => Some(reader),
            Parser::PcapNg(reader) => Some(reader),
            Parser::Closed => None,
        }
    }

    // Called for every frame (by `current`): kept inlined, as before `Closed` made it longer.
    #[inline]
    fn data(&self) -> &[u8] {
        match self {
            Parser::Pcap(reader) => reader.data(),
            Parser::PcapNg(reader) => reader.data(),
            Parser::Closed => &[],
        }
    }

    fn consumed(&mut self) -> Option<u64> {
        self.iter().map(|iter| iter.consumed() as u64)
    }
}

/// Facts about an input gathered while reading it.
#[derive(Clone, Debug, Default)]
pub struct ReaderCounters {
    /// Frames (packet records or packet blocks) delivered.
    pub frames: u64,
    /// pcapng sections (1 for classic pcap).
    pub sections: u64,
    /// Interfaces described (1 for classic pcap).
    pub interfaces: u64,
    /// pcapng blocks that carry no packet (name resolution, statistics, custom, unknown…).
    pub skipped_blocks: u64,
    /// Of those, the blocks that Wireshark numbers as frames (custom, systemd journal): frame
    /// numbers count them so that they match Wireshark's.
    pub numbered_blocks: u64,
    /// Distinct link types of the interfaces, in the order first seen.
    pub link_types: Vec<LinkType>,
    /// Frames whose timestamp is earlier than the frame before them in the same input
    /// (tcpdump on a veth or a multi-queue NIC writes some): read in file order all the same.
    pub out_of_order_frames: u64,
    /// Timestamp of the first frame, nanoseconds since the epoch.
    pub first_ts_ns: Option<i64>,
    /// The longest time between two consecutive frames of this input: what a silence
    /// between two files of a set is compared with.
    pub max_gap_ns: i64,
    /// Frames with a packet comment.
    pub packet_comments: u64,
    /// The comments of the pcapng sections (at most 64 kept; see `sections` for how many
    /// sections there were).
    pub section_comments: Vec<String>,
    /// Obsolete pcapng Packet Blocks read as frames (early ntar-based writers).
    pub obsolete_packet_blocks: u64,
}

/// Reads one capture input frame by frame, in file order.
///
/// ```
/// use twsleuth_reader::CaptureReader;
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/capture/en10mb.pcap");
/// let mut reader = CaptureReader::open(path, 0).unwrap();
/// let mut frames = 0;
/// while reader.advance() {
///     let frame = reader.current().unwrap();
///     assert_eq!(frame.number, frames + 1);
///     frames += 1;
/// }
/// assert!(reader.damage().is_none());
/// assert_eq!(reader.counters().frames, frames);
/// ```
pub struct CaptureReader {
    input: String,
    file_index: u16,
    format: CaptureFormat,
    compression: Compression,
    file_size_bytes: Option<u64>,
    shared: Arc<SourceShared>,
    parser: Parser,
    interfaces: Vec<Interface>,
    /// Big-endian byte order of the current pcapng section or pcap file.
    big_endian: bool,
    /// Classic pcap with 16-byte record headers (not the "modified" format) whose file header
    /// has been read: [`BlockReader::frame_pcap_record`] frames its records.
    frame_pcap_records: bool,
    /// Bytes of the last delivered block, consumed when the reader advances past it.
    pending_consume: usize,
    current: Option<FrameSpan>,
    last_ts_ns: i64,
    counters: ReaderCounters,
    damage: Option<ReadError>,
    /// Things worth knowing that did not stop the reading (an unknown format version).
    warnings: Vec<String>,
    finished: bool,
    /// How to open the input again, when it can be (see [`CaptureReader::set_aside`]).
    source: Option<CaptureSource>,
    hashing: bool,
    buffer_bytes: usize,
    /// The current frame's comment when it is not a plain stretch of the buffer.
    owned_comment: String,
    /// Index in `counters.section_comments` of the current section's comment.
    section_comment: Option<usize>,
}

impl CaptureReader {
    /// Opens an input (a path, or `-` for standard input) as input number `file_index`.
    ///
    /// Fails when the input cannot be opened or is not a pcap/pcapng capture (after gzip or
    /// zstd decompression); damage later in the file is kept in [`CaptureReader::damage`].
    pub fn open(input: &str, file_index: u16) -> Result<CaptureReader, ReadError> {
        CaptureReader::open_source(
            &CaptureSource::file(input),
            file_index,
            false,
            INITIAL_BUFFER_BYTES,
        )
    }

    /// Like [`CaptureReader::open`], and hashes the input's bytes (compressed bytes for
    /// compressed input) as they are read: see [`CaptureReader::sha256`].
    pub fn open_hashing(input: &str, file_index: u16) -> Result<CaptureReader, ReadError> {
        CaptureReader::open_source(
            &CaptureSource::file(input),
            file_index,
            true,
            INITIAL_BUFFER_BYTES,
        )
    }

    /// Opens a capture of a set (a file, standard input or an archive member) with a read
    /// buffer of `buffer_bytes` to start with; with `hashing`, see [`CaptureReader::sha256`].
    pub fn open_source(
        source: &CaptureSource,
        file_index: u16,
        hashing: bool,
        buffer_bytes: usize,
    ) -> Result<CaptureReader, ReadError> {
        let opened = match source.open_stretch() {
            Some((stream, len)) => open_stream(source.name(), stream, Some(len), hashing),
            None if source.name() == "-" => open_input("-", hashing),
            None => open_input(source.path().unwrap_or(source.name()), hashing),
        };
        let mut reader = CaptureReader::with_opened(
            source.name(),
            file_index,
            opened,
            buffer_bytes.max(MIN_BUFFER_BYTES),
        )?;
        reader.hashing = hashing;
        reader.source = Some(source.clone());
        Ok(reader)
    }

    /// Reads a capture from an already open stream; `name` stands for it in messages.
    pub fn from_reader(
        name: &str,
        stream: Box<dyn Read + Send>,
        file_index: u16,
    ) -> Result<CaptureReader, ReadError> {
        CaptureReader::with_opened(
            name,
            file_index,
            open_stream(name, stream, None, false),
            INITIAL_BUFFER_BYTES,
        )
    }

    fn with_opened(
        input: &str,
        file_index: u16,
        opened: Result<OpenedInput, ReadErrorKind>,
        buffer_bytes: usize,
    ) -> Result<CaptureReader, ReadError> {
        let error = |kind| ReadError {
            input: input.to_string(),
            offset: None,
            frames_before: 0,
            kind,
        };
        let opened = opened.map_err(error)?;
        let parser = match opened.format {
            CaptureFormat::Pcap { .. } => {
                LegacyPcapReader::new(buffer_bytes, opened.stream).map(Parser::Pcap)
            }
            CaptureFormat::PcapNg => {
                PcapNGReader::new(buffer_bytes, opened.stream).map(Parser::PcapNg)
            }
        }
        .map_err(|e| error(ReadErrorKind::BadHeader(describe_header_error(&e))))?;
        let big_endian = match opened.format {
            CaptureFormat::Pcap { big_endian, .. } => big_endian,
            CaptureFormat::PcapNg => false,
        };
        Ok(CaptureReader {
            input: input.to_string(),
            file_index,
            format: opened.format,
            compression: opened.compression,
            file_size_bytes: opened.file_size_bytes,
            shared: opened.shared,
            parser,
            interfaces: Vec::new(),
            big_endian,
            frame_pcap_records: false,
            pending_consume: 0,
            current: None,
            last_ts_ns: 0,
            counters: ReaderCounters::default(),
            damage: None,
            warnings: Vec::new(),
            finished: false,
            source: None,
            hashing: false,
            buffer_bytes,
            owned_comment: String::new(),
            section_comment: None,
        })
    }

    /// Closes the input and forgets what was read of it, keeping its name, format and size:
    /// [`CaptureReader::reopen`] starts it again from its first frame. A set of more files than
    /// may be open at once is read so, each opened when its frames come due. False (and
    /// nothing done) when the input cannot be opened again (standard input, a pipe).
    pub fn set_aside(&mut self) -> bool {
        if !self.source.as_ref().is_some_and(CaptureSource::can_reopen) {
            return false;
        }
        self.parser = Parser::Closed;
        self.current = None;
        self.pending_consume = 0;
        self.interfaces.clear();
        self.counters = ReaderCounters::default();
        self.last_ts_ns = 0;
        self.warnings.clear();
        self.section_comment = None;
        self.finished = false;
        true
    }

    /// Whether the reader was set aside and not opened again yet.
    pub fn is_set_aside(&self) -> bool {
        matches!(self.parser, Parser::Closed) && !self.finished
    }

    /// Opens a reader that was [set aside](CaptureReader::set_aside) again, from its start. On
    /// failure the reader stays closed, done, with the error as its damage.
    pub fn reopen(&mut self) -> bool {
        let Some(source) = self.source.clone() else {
            return false;
        };
        match CaptureReader::open_source(&source, self.file_index, self.hashing, self.buffer_bytes)
        {
            Ok(reader) => {
                *self = reader;
                true
            }
            Err(error) => {
                self.finished = true;
                self.damage = Some(error);
                false
            }
        }
    }

    /// Releases the file and the buffer of a reader that is done; its counters, damage and
    /// hash stay.
    pub fn close(&mut self) {
        self.parser = Parser::Closed;
        self.current = None;
        self.finished = true;
    }

    /// Timestamp of the last frame read (kept here rather than in the counters: one store
    /// fewer per frame).
    pub fn last_ts_ns(&self) -> Option<i64> {
        self.counters.first_ts_ns.map(|_| self.last_ts_ns)
    }

    /// Whether the input is open (holds a file descriptor and a buffer).
    pub fn is_open(&self) -> bool {
        !matches!(self.parser, Parser::Closed)
    }

    pub(crate) fn damage_mut(&mut self) -> Option<&mut ReadError> {
        self.damage.as_mut()
    }

    /// What did not stop the reading but may matter: an unknown format version.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The input as named by the user.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The capture format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The compression undone while reading.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Size of the input on disk, when it is a regular file.
    pub fn file_size_bytes(&self) -> Option<u64> {
        self.file_size_bytes
    }

    /// Bytes read from the input so far (compressed bytes for compressed input).
    pub fn raw_bytes_read(&self) -> u64 {
        self.shared.raw_bytes_read.load(Ordering::Relaxed)
    }

    /// SHA-256 of the input, once a reader opened with [`CaptureReader::open_hashing`] has
    /// read it to its end; `None` before, or when reading stopped early (damage, Ctrl-C).
    pub fn sha256(&self) -> Option<[u8; 32]> {
        *self.shared.sha256.lock().ok()?
    }

    /// What has been read so far.
    pub fn counters(&self) -> &ReaderCounters {
        &self.counters
    }

    /// Where the input went bad, if it did: the frames before it were delivered.
    pub fn damage(&self) -> Option<&ReadError> {
        self.damage.as_ref()
    }

    /// The frame the reader is positioned on, after [`CaptureReader::advance`] returned true.
    #[inline]
    pub fn current(&self) -> Option<Frame<'_>> {
        let span = self.current?;
        let buffer = self.parser.data();
        let data = buffer.get(span.data_start..span.data_start + span.data_len)?;
        // Called for every frame: the comments, rare, are looked up out of line.
        let (comment, section_comment) =
            if matches!(span.comment, CommentSpan::None) && self.section_comment.is_none() {
                (None, None)
            } else {
                self.comments(span.comment, buffer)
            };
        Some(Frame {
            file_index: self.file_index,
            number: span.number,
            ts_ns: span.ts_ns,
            link_type: span.link_type,
            orig_len: span.orig_len,
            data,
            comment,
            section_comment,
        })
    }

    /// The current frame's comment and its section's.
    #[cold]
    #[inline(never)]
    fn comments<'a>(
        &'a self,
        span: CommentSpan,
        buffer: &'a [u8],
    ) -> (Option<&'a str>, Option<&'a str>) {
        let comment = match span {
            CommentSpan::None => None,
            CommentSpan::Buffer { start, len } => buffer
                .get(start..start + len)
                .and_then(|bytes| std::str::from_utf8(bytes).ok()),
            CommentSpan::Owned => Some(self.owned_comment.as_str()),
        };
        let section = self
            .section_comment
            .and_then(|i| self.counters.section_comments.get(i))
            .map(String::as_str);
        (comment, section)
    }

    /// Moves to the next frame. Returns false at the end of the input or where it went bad.
    pub fn advance(&mut self) -> bool {
        self.current = None;
        while !self.finished {
            let mut block = BlockReader {
                current: &mut self.current,
                pending_consume: &mut self.pending_consume,
                interfaces: &mut self.interfaces,
                big_endian: &mut self.big_endian,
                frame_pcap_records: &mut self.frame_pcap_records,
                counters: &mut self.counters,
                last_ts_ns: self.last_ts_ns,
                owned_comment: &mut self.owned_comment,
                section_comment: &mut self.section_comment,
                warnings: &mut self.warnings,
            };
            // Matched here rather than through `Parser::iter`: the parser's calls, made for
            // every frame, are then direct and can be inlined.
            let step = match &mut self.parser {
                Parser::Pcap(reader) => match block.frame_pcap_record(reader) {
                    Some(step) => step,
                    None => block.next(reader),
                },
                Parser::PcapNg(reader) => block.next(reader),
                Parser::Closed => Step::Eof,
            };
            match step {
                Step::Frame => {
                    if let Some(span) = &self.current {
                        if self.counters.frames > 0 {
                            let gap_ns = span.ts_ns.saturating_sub(self.last_ts_ns);
                            if gap_ns < 0 {
                                self.counters.out_of_order_frames += 1;
                            } else if gap_ns > self.counters.max_gap_ns {
                                self.counters.max_gap_ns = gap_ns;
                            }
                        } else {
                            self.counters.first_ts_ns = Some(span.ts_ns);
                        }
                        self.last_ts_ns = span.ts_ns;
                        if !matches!(span.comment, CommentSpan::None) {
                            self.counters.packet_comments += 1;
                        }
                    }
                    self.counters.frames += 1;
                    return true;
                }
                Step::NotAFrame => {}
                Step::Corrupt(what) => self.stop(ReadErrorKind::CorruptRecord(what)),
                Step::Eof => self.finished = true,
                Step::Incomplete { available } => {
                    if let Err(kind) = self.refill() {
                        self.stop(kind);
                    } else if self.parser.data().len() == available
                        && self
                            .parser
                            .iter()
                            .is_some_and(|iter| !iter.reader_exhausted())
                    {
                        // pcap-parser asked for more without saying how much and the buffer
                        // is full: grow it, as for `BufferTooSmall`.
                        if let Err(kind) = self.grow_for_record() {
                            self.stop(kind);
                        }
                    }
                }
                Step::BufferTooSmall => {
                    if let Err(kind) = self.grow_for_record() {
                        self.stop(kind);
                    }
                }
                Step::UnexpectedEof => self.stop(ReadErrorKind::CutShort),
                Step::ReadError => {
                    let kind = self.io_error_kind();
                    self.stop(kind);
                }
            }
        }
        false
    }

    fn refill(&mut self) -> Result<(), ReadErrorKind> {
        match self.parser.iter().map(|iter| iter.refill()) {
            Some(Ok(())) | None => Ok(()),
            Some(Err(_)) => Err(self.io_error_kind()),
        }
    }

    /// Grows the buffer to hold the record that starts it, after checking the record's claimed
    /// size (DESIGN.md section 8: a record larger than the buffer gives `BufferTooSmall`).
    fn grow_for_record(&mut self) -> Result<(), ReadErrorKind> {
        let data = self.parser.data();
        let field = |at: usize| -> Option<u32> {
            let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
            Some(if self.big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            })
        };
        let claimed_bytes = match self.parser {
            Parser::Pcap(_) => {
                let caplen = field(8).unwrap_or(0);
                check_pcap_caplen(caplen, self.interfaces.first())
                    .map_err(ReadErrorKind::CorruptRecord)?;
                caplen as u64 + PCAP_RECORD_HEADER_BYTES as u64
            }
            Parser::PcapNg(_) => field(4).unwrap_or(0) as u64,
            Parser::Closed => 0,
        };
        if claimed_bytes > MAX_RECORD_BYTES as u64 {
            return Err(ReadErrorKind::RecordTooLarge {
                claimed_bytes,
                limit_bytes: MAX_RECORD_BYTES as u64,
            });
        }
        let capacity = (claimed_bytes as usize + INITIAL_BUFFER_BYTES)
            .next_power_of_two()
            .min(MAX_RECORD_BYTES + INITIAL_BUFFER_BYTES);
        let Some(iter) = self.parser.iter() else {
            return Ok(());
        };
        if capacity <= iter.data().len() || !iter.grow(capacity) {
            return Err(ReadErrorKind::CorruptRecord(format!(
                "a block of {claimed_bytes} bytes does not fit in memory"
            )));
        }
        self.refill()
    }

    fn io_error_kind(&self) -> ReadErrorKind {
        let error = self
            .shared
            .last_io_error
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or_else(|| std::io::Error::other("read failed"));
        match self.compression {
            Compression::None => ReadErrorKind::Io(error),
            Compression::Gzip | Compression::Zstd => ReadErrorKind::Decompress(error),
        }
    }

    fn stop(&mut self, kind: ReadErrorKind) {
        self.finished = true;
        self.damage = Some(ReadError {
            input: self.input.clone(),
            offset: self.parser.consumed(),
            frames_before: self.counters.frames,
            kind,
        });
    }
}

/// What reading the next block gave, without borrowing the parser; [`read_block`] gives the
/// first three.
enum Step {
    /// A frame, now the reader's current one.
    Frame,
    NotAFrame,
    Corrupt(String),
    Eof,
    /// More bytes are needed; the buffer held `available` bytes.
    Incomplete {
        available: usize,
    },
    BufferTooSmall,
    UnexpectedEof,
    ReadError,
}

/// The reader's fields that reading a block updates, borrowed apart from the parser.
struct BlockReader<'a> {
    /// Where the frame's place in the buffer goes: written there at once, as this runs for
    /// every frame (passing it back through the return values costs more).
    current: &'a mut Option<FrameSpan>,
    /// Bytes of the last delivered block, consumed before reading the next.
    pending_consume: &'a mut usize,
    interfaces: &'a mut Vec<Interface>,
    big_endian: &'a mut bool,
    frame_pcap_records: &'a mut bool,
    counters: &'a mut ReaderCounters,
    last_ts_ns: i64,
    owned_comment: &'a mut String,
    section_comment: &'a mut Option<usize>,
    warnings: &'a mut Vec<String>,
}

impl BlockReader<'_> {
    /// Consumes the last record and frames the next classic pcap record straight from the
    /// buffer, when it is whole there: pcap-parser's `next` builds a nom result and a block for
    /// each of millions of records (~5% of `analyze`). `None` leaves the rest to pcap-parser:
    /// the file header, the "modified" format, a record cut by the buffer's end, the input's
    /// end.
    fn frame_pcap_record<R: Read>(&mut self, parser: &mut LegacyPcapReader<R>) -> Option<Step> {
        if !*self.frame_pcap_records {
            return None;
        }
        let iface = self.interfaces.first()?;
        parser.consume_noshift(std::mem::take(self.pending_consume));
        let data = parser.data();
        let header: &[u8; PCAP_RECORD_HEADER_BYTES] =
            data.get(..PCAP_RECORD_HEADER_BYTES)?.try_into().ok()?;
        let field = |at: usize| {
            let bytes = [header[at], header[at + 1], header[at + 2], header[at + 3]];
            if *self.big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            }
        };
        let record = LegacyPcapBlock {
            ts_sec: field(0),
            ts_usec: field(4),
            caplen: field(8),
            origlen: field(12),
            data: &[],
        };
        if let Err(what) = check_pcap_caplen(record.caplen, Some(iface)) {
            return Some(Step::Corrupt(what));
        }
        let record_len = PCAP_RECORD_HEADER_BYTES + record.caplen as usize;
        let record = LegacyPcapBlock {
            data: data.get(PCAP_RECORD_HEADER_BYTES..record_len)?,
            ..record
        };
        let number = self.next_frame_number();
        let (ts_ns, captured) = pcap_record_frame(&record, iface);
        *self.current = Some(frame_span(
            number,
            ts_ns,
            iface,
            record.origlen,
            captured,
            data.as_ptr() as usize,
        ));
        *self.pending_consume = record_len;
        Some(Step::Frame)
    }

    /// Wireshark's number for the next frame.
    fn next_frame_number(&self) -> u64 {
        self.counters.frames + self.counters.numbered_blocks + 1
    }

    /// Consumes the last block and reads the next one from `parser`.
    fn next<P: PcapReaderIterator>(&mut self, parser: &mut P) -> Step {
        // No shift here: `refill` shifts once per buffer instead of `consume` moving half the
        // buffer every time the read position passes its middle.
        parser.consume_noshift(std::mem::take(self.pending_consume));
        let data = parser.data();
        let (base, available) = (data.as_ptr() as usize, data.len());
        match parser.next() {
            Ok((block_len, block)) => {
                let number = self.next_frame_number();
                let step = read_block(self, block, base, number);
                if !matches!(step, Step::Corrupt(_)) {
                    *self.pending_consume = block_len;
                }
                step
            }
            Err(PcapError::Eof) => Step::Eof,
            Err(PcapError::Incomplete(_)) => Step::Incomplete { available },
            Err(PcapError::BufferTooSmall) => Step::BufferTooSmall,
            Err(PcapError::UnexpectedEof) => Step::UnexpectedEof,
            Err(PcapError::ReadError) => Step::ReadError,
            // pcap-parser says only which nom check failed: the block's own fields say more.
            Err(_) => Step::Corrupt(describe_bad_block(
                parser.data(),
                *self.big_endian,
                *self.frame_pcap_records || self.counters.sections == 0,
            )),
        }
    }
}

/// Interprets one parsed block. A free function so that it can borrow the reader's other
/// fields while `block` borrows the parser.
fn read_block(
    fields: &mut BlockReader<'_>,
    block: PcapBlockOwned<'_>,
    buffer_base: usize,
    number: u64,
) -> Step {
    let (current, interfaces, big_endian, counters) = (
        &mut *fields.current,
        &mut *fields.interfaces,
        &mut *fields.big_endian,
        &mut *fields.counters,
    );
    let last_ts_ns = fields.last_ts_ns;
    let frame_pcap_records = &mut *fields.frame_pcap_records;
    let (owned_comment, section_comment, warnings) = (
        &mut *fields.owned_comment,
        &mut *fields.section_comment,
        &mut *fields.warnings,
    );
    let mut span = |ts_ns: i64,
                    iface: &Interface,
                    orig_len: u32,
                    data: &[u8],
                    comments: &mut dyn Iterator<Item = &[u8]>| {
        let mut frame = frame_span(number, ts_ns, iface, orig_len, data, buffer_base);
        frame.comment = comment_span(comments, buffer_base, owned_comment);
        *current = Some(frame);
        Step::Frame
    };
    match block {
        PcapBlockOwned::LegacyHeader(header) => {
            counters.sections += 1;
            *frame_pcap_records = !header.is_modified_format();
            // libpcap has written 2.4 since 1998 (2.2 and 2.3 before, with the same records).
            if (header.version_major, header.version_minor) != (2, 4)
                && !(header.version_major == 2 && header.version_minor < 4)
            {
                warnings.push(format!(
                    "the file says it is pcap version {}.{}, which no known tool writes                      (libpcap writes 2.4): it was read as 2.4, so check the frames make sense",
                    header.version_major, header.version_minor
                ));
            }
            add_interface(
                interfaces,
                counters,
                Interface::new(
                    LinkType::from_header_field(header.network.0),
                    if header.is_nanosecond_precision() {
                        1_000_000_000
                    } else {
                        1_000_000
                    },
                    0,
                    header.snaplen,
                ),
            );
            Step::NotAFrame
        }
        PcapBlockOwned::Legacy(record) => {
            let Some(iface) = interfaces.first() else {
                return Step::Corrupt("a packet record before the file header".into());
            };
            if let Err(what) = check_pcap_caplen(record.caplen, Some(iface)) {
                return Step::Corrupt(what);
            }
            let (ts_ns, captured) = pcap_record_frame(&record, iface);
            span(
                ts_ns,
                iface,
                record.origlen,
                captured,
                &mut std::iter::empty(),
            )
        }
        PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
            counters.sections += 1;
            *big_endian = shb.big_endian();
            interfaces.clear();
            // Version 1.0 is the only one written; Wireshark refuses other major versions, and
            // 1.2 appeared only in drafts.
            if (shb.major_version, shb.minor_version) != (1, 0) {
                warnings.push(format!(
                    "section {} says it is pcapng version {}.{}, which no known tool writes                      (they write 1.0; Wireshark refuses other major versions): it was read as                      1.0, so check the frames make sense",
                    counters.sections, shb.major_version, shb.minor_version
                ));
            }
            *section_comment = None;
            let texts: Vec<String> = shb
                .options
                .iter()
                .filter(|o| o.code.0 == OPT_COMMENT)
                .filter_map(|o| o.as_bytes().ok())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            if !texts.is_empty() && counters.section_comments.len() < MAX_SECTION_COMMENTS {
                *section_comment = Some(counters.section_comments.len());
                counters.section_comments.push(texts.join("\n"));
            }
            Step::NotAFrame
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            let Some(units_per_second) = units_per_second(idb.if_tsresol) else {
                return Step::Corrupt(format!(
                    "interface {} has an impossible timestamp resolution (if_tsresol {:#04x})",
                    interfaces.len(),
                    idb.if_tsresol
                ));
            };
            add_interface(
                interfaces,
                counters,
                Interface::new(
                    LinkType::from_header_field(idb.linktype.0),
                    units_per_second,
                    idb.if_tsoffset,
                    idb.snaplen,
                ),
            );
            Step::NotAFrame
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let Some(iface) = interfaces.get(epb.if_id as usize) else {
                return Step::Corrupt(format!(
                    "a packet block names interface {} but the section declares {}",
                    epb.if_id,
                    interfaces.len()
                ));
            };
            let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            // `data` includes the padding to 32 bits; `caplen` is the captured length.
            let captured = &epb.data[..epb.data.len().min(epb.caplen as usize)];
            let mut comments = epb
                .options
                .iter()
                .filter(|o| o.code.0 == OPT_COMMENT)
                .filter_map(|o| o.as_bytes().ok());
            span(
                timestamp_ns(ts, iface),
                iface,
                epb.origlen,
                captured,
                &mut comments,
            )
        }
        PcapBlockOwned::NG(Block::Unknown(block))
            if normalized_type(block.block_type, *big_endian) == OBSOLETE_PACKET_BLOCK =>
        {
            let Some(packet) = ObsoletePacket::parse(block.data, *big_endian) else {
                return Step::Corrupt(
                    "an obsolete Packet Block (type 2) is too short for its own fields".into(),
                );
            };
            let Some(iface) = interfaces.get(usize::from(packet.if_id)) else {
                return Step::Corrupt(format!(
                    "a packet block names interface {} but the section declares {}",
                    packet.if_id,
                    interfaces.len()
                ));
            };
            counters.obsolete_packet_blocks += 1;
            let ts_ns = timestamp_ns(packet.ts, iface);
            let mut comments = packet.comments(*big_endian);
            span(ts_ns, iface, packet.orig_len, packet.data, &mut comments)
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            let Some(iface) = interfaces.first() else {
                return Step::Corrupt(
                    "a simple packet block in a section without interfaces".into(),
                );
            };
            // An SPB's captured length is implied: the original length, bounded by the block
            // and by the interface's snaplen (pcapng spec, section 4.4). It has no timestamp:
            // it gets the previous frame's, which keeps the file's order.
            let mut captured_len = spb.data.len().min(spb.origlen as usize);
            if iface.snaplen > 0 {
                captured_len = captured_len.min(iface.snaplen as usize);
            }
            span(
                last_ts_ns,
                iface,
                spb.origlen,
                &spb.data[..captured_len],
                &mut std::iter::empty(),
            )
        }
        // Wireshark (wiretap/pcapng.c, 4.0 and later) turns custom and systemd journal blocks
        // into records of their own, with frame numbers: count them so that our frame numbers
        // match what Wireshark shows, though they carry no packet.
        PcapBlockOwned::NG(Block::Custom(_) | Block::SystemdJournalExport(_)) => {
            counters.numbered_blocks += 1;
            counters.skipped_blocks += 1;
            Step::NotAFrame
        }
        PcapBlockOwned::NG(_) => {
            counters.skipped_blocks += 1;
            Step::NotAFrame
        }
    }
}

fn add_interface(interfaces: &mut Vec<Interface>, counters: &mut ReaderCounters, iface: Interface) {
    counters.interfaces += 1;
    if !counters.link_types.contains(&iface.link_type) {
        counters.link_types.push(iface.link_type);
    }
    interfaces.push(iface);
}

/// A classic pcap record's timestamp and captured bytes.
fn pcap_record_frame<'a>(record: &LegacyPcapBlock<'a>, iface: &Interface) -> (i64, &'a [u8]) {
    // Classic pcap has whole seconds and a µs or ns fraction.
    let ts_ns = i64::from(record.ts_sec) * 1_000_000_000
        + i64::from(record.ts_usec) * iface.ns_per_unit as i64;
    (
        ts_ns,
        &record.data[..record.data.len().min(record.caplen as usize)],
    )
}

/// Where a frame lies in the buffer starting at `buffer_base`.
fn frame_span(
    number: u64,
    ts_ns: i64,
    iface: &Interface,
    orig_len: u32,
    data: &[u8],
    buffer_base: usize,
) -> FrameSpan {
    FrameSpan {
        number,
        ts_ns,
        link_type: iface.link_type,
        orig_len,
        data_start: data.as_ptr() as usize - buffer_base,
        data_len: data.len(),
        comment: CommentSpan::None,
    }
}

/// Where the packet's comments are: one valid UTF-8 comment inside the buffer is pointed at;
/// several, or one that is not UTF-8 or not in the buffer, are copied into `owned`.
fn comment_span(
    comments: &mut dyn Iterator<Item = &[u8]>,
    buffer_base: usize,
    owned: &mut String,
) -> CommentSpan {
    let Some(first) = comments.next() else {
        return CommentSpan::None;
    };
    let second = comments.next();
    let start = (first.as_ptr() as usize).wrapping_sub(buffer_base);
    if second.is_none() && std::str::from_utf8(first).is_ok() && start < (1 << 40) {
        return CommentSpan::Buffer {
            start,
            len: first.len(),
        };
    }
    owned.clear();
    owned.push_str(&String::from_utf8_lossy(first));
    for more in second.into_iter().chain(comments) {
        owned.push('\n');
        owned.push_str(&String::from_utf8_lossy(more));
    }
    CommentSpan::Owned
}

/// A pcapng block type as written, whatever the section's byte order (pcap-parser reads the
/// type of an unknown block as little-endian).
fn normalized_type(block_type: u32, big_endian: bool) -> u32 {
    if big_endian {
        block_type.swap_bytes()
    } else {
        block_type
    }
}

/// The fields of an obsolete Packet Block (type 2): interface id (16 bits), drops count (16
/// bits), timestamp (high, low), captured length, original length, data padded to 32 bits,
/// options. pcap-parser does not know the block; Wireshark reads it.
struct ObsoletePacket<'a> {
    if_id: u16,
    ts: u64,
    orig_len: u32,
    data: &'a [u8],
    options: &'a [u8],
}

impl<'a> ObsoletePacket<'a> {
    /// `body`: the block between its two length fields.
    fn parse(body: &'a [u8], big_endian: bool) -> Option<ObsoletePacket<'a>> {
        let u16_at = |at: usize| -> Option<u16> {
            let b: [u8; 2] = body.get(at..at + 2)?.try_into().ok()?;
            Some(if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            })
        };
        let u32_at = |at: usize| -> Option<u32> {
            let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        let if_id = u16_at(0)?;
        let ts = (u64::from(u32_at(4)?) << 32) | u64::from(u32_at(8)?);
        let caplen = usize::try_from(u32_at(12)?).ok()?;
        let orig_len = u32_at(16)?;
        let data = body.get(20..20usize.checked_add(caplen)?)?;
        let options = body.get(20 + caplen.div_ceil(4) * 4..).unwrap_or(&[]);
        Some(ObsoletePacket {
            if_id,
            ts,
            orig_len,
            data,
            options,
        })
    }

    /// The values of its `opt_comment` options.
    fn comments(&self, big_endian: bool) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut rest = self.options;
        std::iter::from_fn(move || {
            loop {
                let header: [u8; 4] = rest.get(..4)?.try_into().ok()?;
                let (code, len) = if big_endian {
                    (
                        u16::from_be_bytes([header[0], header[1]]),
                        u16::from_be_bytes([header[2], header[3]]),
                    )
                } else {
                    (
                        u16::from_le_bytes([header[0], header[1]]),
                        u16::from_le_bytes([header[2], header[3]]),
                    )
                };
                // opt_endofopt
                if code == 0 {
                    return None;
                }
                let len = usize::from(len);
                let value = rest.get(4..4 + len)?;
                rest = rest.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
                if code == OPT_COMMENT {
                    return Some(value);
                }
            }
        })
    }
}

/// A classic pcap record claiming more than the snaplen and Wireshark's maximum is corrupt:
/// trusting it would swallow the records after it.
fn check_pcap_caplen(caplen: u32, iface: Option<&Interface>) -> Result<(), String> {
    let snaplen = iface.map_or(0, |i| i.snaplen);
    let limit = snaplen.max(MAX_PLAUSIBLE_PCAP_CAPLEN);
    if caplen > limit {
        return Err(format!(
            "a record header claims {caplen} captured bytes, more than the snaplen ({snaplen}) allows"
        ));
    }
    Ok(())
}

/// Units per second from pcapng's `if_tsresol`: 10^n, or 2^n when the high bit is set.
/// pcap-parser's `build_ts_resolution` rejects the power-of-2 form (DESIGN.md section 8).
fn units_per_second(if_tsresol: u8) -> Option<u64> {
    let exponent = u32::from(if_tsresol & 0x7f);
    if if_tsresol & 0x80 != 0 {
        1u64.checked_shl(exponent).filter(|_| exponent < 64)
    } else {
        10u64.checked_pow(exponent)
    }
}

/// Converts a timestamp in interface units to nanoseconds since the epoch, saturating.
fn timestamp_ns(units: u64, iface: &Interface) -> i64 {
    // Fast path for the usual resolutions (1 µs, 1 ns): an exact multiplication.
    if iface.offset_s == 0 && iface.ns_per_unit != 0 {
        if let Some(ns) = units
            .checked_mul(iface.ns_per_unit)
            .and_then(|ns| i64::try_from(ns).ok())
        {
            return ns;
        }
    }
    let per_second = u128::from(iface.units_per_second);
    let units = u128::from(units);
    let ns =
        (units / per_second) * 1_000_000_000 + (units % per_second) * 1_000_000_000 / per_second;
    let ns = i128::try_from(ns).unwrap_or(i128::MAX) + i128::from(iface.offset_s) * 1_000_000_000;
    ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Why pcap-parser refused the file header, in the words of someone holding the file (its
/// errors name nom's checks: "predicate verification" says nothing to a reader).
fn describe_header_error<I>(error: &PcapError<I>) -> String {
    match error {
        PcapError::NomError(..) | PcapError::OwnedNomError(..) => {
            "the file header's fields do not fit together (its options or lengths run past \
             its end): the file is corrupt"
                .into()
        }
        PcapError::HeaderNotRecognized => "the file header is neither pcap's nor pcapng's".into(),
        PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
            "the file ends inside its header".into()
        }
        PcapError::ReadError => "the file could not be read".into(),
        PcapError::BufferTooSmall => {
            "the file header claims to be larger than any real one: the file is corrupt".into()
        }
    }
}

/// What is wrong with the block or record at the start of `data`, which the parser refused.
fn describe_bad_block(data: &[u8], big_endian: bool, classic_pcap: bool) -> String {
    if classic_pcap {
        return "a record header does not fit the file's format (its lengths run past the \
                record): the file is corrupt from here"
            .into();
    }
    let field = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let (Some(block_type), Some(length)) = (field(0), field(4)) else {
        return "a block header is cut short: the file is corrupt from here".into();
    };
    let name = match block_type {
        0x0A0D_0D0A => "Section Header Block",
        1 => "Interface Description Block",
        OBSOLETE_PACKET_BLOCK => "Packet Block (obsolete)",
        3 => "Simple Packet Block",
        4 => "Name Resolution Block",
        5 => "Interface Statistics Block",
        6 => "Enhanced Packet Block",
        _ => "block",
    };
    let article = if name.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    let what = format!("{article} {name} (type {block_type:#x})");
    if length < 12 || length % 4 != 0 {
        return format!(
            "{what} claims a length of {length} bytes, which no block can have (at least 12, a \
             multiple of 4): the file is corrupt from here"
        );
    }
    match field(length as usize - 4) {
        Some(trailing) if trailing != length => format!(
            "{what} says it is {length} bytes long at its start but {trailing} at its end: the \
             file is corrupt from here"
        ),
        _ => format!(
            "{what} of {length} bytes has fields that run past its end: the file is corrupt \
             from here"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(units_per_second: u64, offset_s: i64) -> Interface {
        Interface::new(LinkType::ETHERNET, units_per_second, offset_s, 0)
    }

    #[test]
    fn if_tsresol_power_of_ten_and_two() {
        assert_eq!(units_per_second(6), Some(1_000_000));
        assert_eq!(units_per_second(9), Some(1_000_000_000));
        assert_eq!(units_per_second(0x80 | 20), Some(1 << 20));
        assert_eq!(units_per_second(20), None);
        assert_eq!(units_per_second(0x80 | 64), None);
    }

    #[test]
    fn timestamps_convert_without_losing_nanoseconds() {
        assert_eq!(
            timestamp_ns(1_700_000_000_123_456, &iface(1_000_000, 0)),
            1_700_000_000_123_456_000
        );
        assert_eq!(
            timestamp_ns(1_700_000_000_123_456_789, &iface(1_000_000_000, 0)),
            1_700_000_000_123_456_789
        );
        // 2^-20 s units: half a second is 2^19 units.
        assert_eq!(
            timestamp_ns((5 << 20) + (1 << 19), &iface(1 << 20, 0)),
            5_500_000_000
        );
        assert_eq!(timestamp_ns(1_000_000, &iface(1_000_000, -1)), 0);
    }

    #[test]
    fn timestamps_saturate_instead_of_overflowing() {
        assert_eq!(timestamp_ns(u64::MAX, &iface(1, i64::MAX)), i64::MAX);
        assert_eq!(timestamp_ns(0, &iface(1, i64::MIN)), i64::MIN);
    }

    #[test]
    fn implausible_pcap_caplen_is_corrupt() {
        let mut header = iface(1_000_000, 0);
        header.snaplen = 65_535;
        assert!(check_pcap_caplen(65_535, Some(&header)).is_ok());
        assert!(check_pcap_caplen(262_144, Some(&header)).is_ok());
        assert!(check_pcap_caplen(0x7fff_ffff, Some(&header)).is_err());
    }
}
