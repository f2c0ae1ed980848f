//! Opening an input: a path or `-` (standard input), plain, gzip or zstd, told apart by magic
//! bytes; then the capture format, again by magic bytes.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::ReadErrorKind;
use crate::hash::InputHasher;
use crate::interrupt::PumpedReader;
use crate::sniff::{SNIFF_BYTES, describe_unknown};

/// How an input was compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
}

/// The capture file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps in nanoseconds (magic `a1b23c4d`) rather than microseconds.
        nanosecond: bool,
        /// Header fields are big-endian.
        big_endian: bool,
    },
    /// pcapng; each section carries its own byte order.
    PcapNg,
}

impl std::fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureFormat::Pcap {
                nanosecond,
                big_endian,
            } => write!(
                f,
                "pcap ({}, {})",
                if *nanosecond { "ns" } else { "µs" },
                if *big_endian {
                    "big-endian"
                } else {
                    "little-endian"
                }
            ),
            CaptureFormat::PcapNg => f.write_str("pcapng"),
        }
    }
}

/// Byte counts shared between the reading thread and whoever shows progress.
#[derive(Debug, Default)]
pub(crate) struct SourceShared {
    /// Bytes read from the file itself (compressed bytes for compressed input).
    pub raw_bytes_read: AtomicU64,
    /// The last I/O error seen below the capture parser, which pcap-parser reduces to a bare
    /// `ReadError`; kept here so the message can say what really happened.
    pub last_io_error: Mutex<Option<io::Error>>,
    /// SHA-256 of the input's bytes, when asked for and once they were all read.
    pub sha256: Mutex<Option<[u8; 32]>>,
}

/// Counts the bytes read from the underlying file, and hashes them when asked: a report names
/// its inputs by hash, and hashing them here spares reading each file a second time.
struct CountingReader<R> {
    inner: R,
    shared: Arc<SourceShared>,
    hasher: Option<InputHasher>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.shared
            .raw_bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        if n > 0 {
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&buf[..n]);
            }
        } else if !buf.is_empty() {
            if let Some(hasher) = self.hasher.take() {
                let digest = hasher.finish();
                if let Ok(mut slot) = self.shared.sha256.lock() {
                    *slot = Some(digest);
                }
            }
        }
        Ok(n)
    }
}

/// Keeps a copy of the first I/O error of the (decompressed) stream for the error message.
struct ErrorKeepingReader<R> {
    inner: R,
    shared: Arc<SourceShared>,
}

impl<R: Read> Read for ErrorKeepingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Ok(mut slot) = self.shared.last_io_error.lock() {
                        slot.get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
                    }
                    return Err(e);
                }
                Ok(n) => return Ok(n),
            }
        }
    }
}

/// An opened input, positioned at the start of the capture stream, with its header read.
pub(crate) struct OpenedInput {
    /// The capture stream, starting with the bytes of `header` again.
    pub stream: Box<dyn Read + Send>,
    pub compression: Compression,
    pub format: CaptureFormat,
    pub shared: Arc<SourceShared>,
    /// Size of the file on disk, when it is a regular file (for progress and ETA).
    pub file_size_bytes: Option<u64>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const PCAPNG_SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAPNG_BOM_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];
/// The largest Section Header Block accepted while sniffing; real ones are a few hundred bytes.
const MAX_SHB_BYTES: u32 = 1 << 20;
const PCAP_HEADER_BYTES: usize = 24;

/// Opens `input` (a path or `-`), undoes compression and reads the capture header; with
/// `sha256`, hashes the input's bytes as they are read.
///
/// The whole header is read before pcap-parser sees the stream: its constructors parse the
/// first `read()` only, and pipes and decompressors return short reads (DESIGN.md section 8).
pub(crate) fn open_input(input: &str, sha256: bool) -> Result<OpenedInput, ReadErrorKind> {
    if input == "-" {
        return open_stream(
            input,
            Box::new(PumpedReader::new(Box::new(io::stdin()))),
            None,
            sha256,
        );
    }
    let file = File::open(input).map_err(ReadErrorKind::Io)?;
    let meta = file.metadata().map_err(ReadErrorKind::Io)?;
    if meta.is_dir() {
        return Err(ReadErrorKind::Io(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory, not a capture file",
        )));
    }
    if meta.is_file() {
        open_stream(input, Box::new(file), Some(meta.len()), sha256)
    } else {
        // A named pipe or a device: it may block with no data.
        open_stream(
            input,
            Box::new(PumpedReader::new(Box::new(file))),
            None,
            sha256,
        )
    }
}

/// Like [`open_input`], for a stream that is already open (standard input, a file, bytes);
/// `name` stands for it in the advice given for a foreign format.
pub(crate) fn open_stream(
    name: &str,
    raw: Box<dyn Read + Send>,
    file_size_bytes: Option<u64>,
    sha256: bool,
) -> Result<OpenedInput, ReadErrorKind> {
    let shared = Arc::new(SourceShared::default());
    let mut raw = CountingReader {
        inner: raw,
        shared: Arc::clone(&shared),
        hasher: sha256.then(InputHasher::new),
    };

    let mut magic = Vec::with_capacity(4);
    read_up_to(&mut raw, &mut magic, 4).map_err(ReadErrorKind::Io)?;
    if magic.is_empty() {
        return Err(ReadErrorKind::Empty);
    }
    let rewound = Cursor::new(magic.clone()).chain(raw);
    let (decompressed, compression): (Box<dyn Read + Send>, Compression) =
        if magic.starts_with(&GZIP_MAGIC) {
            (
                Box::new(flate2::read::MultiGzDecoder::new(rewound)),
                Compression::Gzip,
            )
        } else if magic == ZSTD_MAGIC {
            let decoder = zstd::stream::read::Decoder::new(rewound).map_err(ReadErrorKind::Io)?;
            (Box::new(decoder), Compression::Zstd)
        } else {
            (Box::new(rewound), Compression::None)
        };
    let mut stream = ErrorKeepingReader {
        inner: decompressed,
        shared: Arc::clone(&shared),
    };

    let mut header = Vec::with_capacity(64);
    let decompress_error = |e: io::Error| match compression {
        Compression::None => ReadErrorKind::Io(e),
        _ => ReadErrorKind::Decompress(e),
    };
    read_up_to(&mut stream, &mut header, 4).map_err(decompress_error)?;
    if header.is_empty() {
        return Err(ReadErrorKind::Empty);
    }
    let format = if header == PCAPNG_SHB_MAGIC {
        read_up_to(&mut stream, &mut header, 12).map_err(decompress_error)?;
        if header.len() < 12 {
            return Err(ReadErrorKind::BadHeader(
                "the pcapng section header is cut short".into(),
            ));
        }
        let length_field = [header[4], header[5], header[6], header[7]];
        let shb_len = if header[8..12] == PCAPNG_BOM_LE {
            u32::from_le_bytes(length_field)
        } else {
            u32::from_be_bytes(length_field)
        };
        if !(28..=MAX_SHB_BYTES).contains(&shb_len) || shb_len % 4 != 0 {
            return Err(ReadErrorKind::BadHeader(format!(
                "the pcapng section header claims an impossible length of {shb_len} bytes"
            )));
        }
        read_up_to(&mut stream, &mut header, shb_len as usize).map_err(decompress_error)?;
        CaptureFormat::PcapNg
    } else if let Some(format) = pcap_format(&header) {
        read_up_to(&mut stream, &mut header, PCAP_HEADER_BYTES).map_err(decompress_error)?;
        if header.len() < PCAP_HEADER_BYTES {
            return Err(ReadErrorKind::BadHeader(
                "the pcap file header is cut short".into(),
            ));
        }
        format
    } else {
        read_up_to(&mut stream, &mut header, SNIFF_BYTES).map_err(decompress_error)?;
        return Err(describe_unknown(&header, name));
    };
    Ok(OpenedInput {
        stream: Box::new(Cursor::new(header).chain(stream)),
        compression,
        format,
        shared,
        file_size_bytes,
    })
}

/// Reads until `buf` holds `len` bytes or the stream ends.
fn read_up_to(reader: &mut impl Read, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    while buf.len() < len {
        let missing = len - buf.len();
        let start = buf.len();
        buf.resize(len, 0);
        match reader.read(&mut buf[start..start + missing]) {
            Ok(0) => {
                buf.truncate(start);
                break;
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn pcap_format(magic: &[u8]) -> Option<CaptureFormat> {
    let (nanosecond, big_endian) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, true),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        // Alexey Kuznetzov's "modified" pcap (magic a1b2cd34), which pcap-parser reads.
        [0x34, 0xcd, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xcd, 0x34] => (false, true),
        _ => return None,
    };
    Some(CaptureFormat::Pcap {
        nanosecond,
        big_endian,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_up_to_collects_short_reads() {
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = first;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut buf = Vec::new();
        read_up_to(&mut OneByte(b"abcdef"), &mut buf, 4).unwrap();
        assert_eq!(buf, b"abcd");
        read_up_to(&mut OneByte(b"xy"), &mut buf, 10).unwrap();
        assert_eq!(buf, b"abcdxy");
    }
}
