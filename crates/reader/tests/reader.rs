//! Reader behaviour on captures built in memory: byte orders, resolutions, damage, short reads,
//! large records, and random bytes (which must never panic).

use std::io::{self, Read};

use proptest::prelude::*;
use twsleuth_reader::{CaptureReader, LinkType, ReadErrorKind};

/// Builds classic pcap bytes.
struct Pcap {
    big_endian: bool,
    bytes: Vec<u8>,
}

impl Pcap {
    fn new(big_endian: bool, nanosecond: bool, link_type: u32, snaplen: u32) -> Pcap {
        let mut pcap = Pcap {
            big_endian,
            bytes: Vec::new(),
        };
        pcap.u32(if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        pcap.u16(2);
        pcap.u16(4);
        pcap.u32(0);
        pcap.u32(0);
        pcap.u32(snaplen);
        pcap.u32(link_type);
        pcap
    }

    fn u16(&mut self, v: u16) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }

    fn u32(&mut self, v: u32) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }

    fn record(mut self, ts_s: u32, frac: u32, data: &[u8], orig_len: u32) -> Pcap {
        self.u32(ts_s);
        self.u32(frac);
        self.u32(data.len() as u32);
        self.u32(orig_len);
        self.bytes.extend_from_slice(data);
        self
    }
}

/// Builds little-endian pcapng blocks.
fn block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out.extend_from_slice(&total.to_le_bytes());
    out
}

fn shb() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    block(0x0a0d_0d0a, &body)
}

fn idb(link_type: u16, snaplen: u32, tsresol: Option<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&link_type.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&snaplen.to_le_bytes());
    if let Some(resol) = tsresol {
        body.extend_from_slice(&9u16.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&[resol, 0, 0, 0]);
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(1, &body)
}

fn epb(if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&if_id.to_le_bytes());
    body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    block(6, &body)
}

/// Hands out its bytes a few at a time, like a pipe or a decompressor.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn reader_over(bytes: Vec<u8>) -> Result<CaptureReader, twsleuth_reader::ReadError> {
    CaptureReader::from_reader("test", Box::new(io::Cursor::new(bytes)), 0)
}

/// (frame number, timestamp, link type, bytes) of every frame.
fn frames(reader: &mut CaptureReader) -> Vec<(u64, i64, LinkType, Vec<u8>)> {
    let mut out = Vec::new();
    while reader.advance() {
        let f = reader.current().expect("positioned on a frame");
        out.push((f.number, f.ts_ns, f.link_type, f.data.to_vec()));
    }
    out
}

#[test]
fn pcap_in_both_byte_orders_and_resolutions_gives_nanosecond_timestamps() {
    for big_endian in [false, true] {
        for nanosecond in [false, true] {
            let frac = if nanosecond { 123_456_789 } else { 123_456 };
            let pcap = Pcap::new(big_endian, nanosecond, 1, 65535)
                .record(1_700_000_000, frac, b"first frame", 11)
                .record(1_700_000_001, 0, b"second", 60);
            let mut reader = reader_over(pcap.bytes).unwrap();
            let got = frames(&mut reader);
            let expected_ns = if nanosecond { 123_456_789 } else { 123_456_000 };
            assert_eq!(got.len(), 2, "big_endian={big_endian} ns={nanosecond}");
            assert_eq!(got[0].1, 1_700_000_000_000_000_000 + expected_ns);
            assert_eq!(got[0].3, b"first frame");
            assert_eq!((got[1].0, got[1].2), (2, LinkType::ETHERNET));
            assert!(reader.damage().is_none());
        }
    }
}

#[test]
fn truncated_last_record_keeps_earlier_frames_and_names_the_offset() {
    let mut pcap = Pcap::new(false, false, 1, 65535)
        .record(1, 0, &[1; 40], 40)
        .record(2, 0, &[2; 40], 40);
    let cut_at = pcap.bytes.len() + 16 + 10;
    pcap = pcap.record(3, 0, &[3; 40], 40);
    pcap.bytes.truncate(cut_at);
    let mut reader = reader_over(pcap.bytes).unwrap();
    assert_eq!(frames(&mut reader).len(), 2);
    let damage = reader.damage().expect("damage recorded");
    assert!(matches!(damage.kind, ReadErrorKind::CutShort));
    assert_eq!(damage.offset, Some(24 + 2 * 56));
    assert_eq!(damage.frames_before, 2);
    let message = damage.to_string();
    assert!(
        message.contains("byte offset 136") && message.contains("after frame 2"),
        "{message}"
    );
}

#[test]
fn corrupt_caplen_stops_with_a_clear_error_and_small_memory() {
    let mut pcap = Pcap::new(false, false, 1, 65535).record(1, 0, &[1; 40], 40);
    pcap.u32(2);
    pcap.u32(0);
    pcap.u32(0x7fff_ffff);
    pcap.u32(40);
    pcap.bytes.extend_from_slice(&[0; 100]);
    let mut reader = reader_over(pcap.bytes).unwrap();
    assert_eq!(frames(&mut reader).len(), 1);
    let damage = reader.damage().expect("damage recorded");
    assert!(
        matches!(damage.kind, ReadErrorKind::CorruptRecord(_)),
        "{damage}"
    );
    assert_eq!(damage.offset, Some(24 + 56));
}

#[test]
fn a_record_larger_than_the_buffer_is_read_after_growing_it() {
    let big = vec![0xab; 3 << 20];
    let pcap = Pcap::new(false, false, 1, 8 << 20)
        .record(1, 0, &[1; 40], 40)
        .record(2, 0, &big, big.len() as u32)
        .record(3, 0, &[3; 40], 40);
    let mut reader = reader_over(pcap.bytes).unwrap();
    let got = frames(&mut reader);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].3.len(), 3 << 20);
    assert!(reader.damage().is_none());
}

#[test]
fn short_reads_from_a_pipe_are_handled() {
    let mut pcap = Pcap::new(false, false, 1, 65535);
    for i in 0..50 {
        pcap = pcap.record(i, 0, &[i as u8; 70], 70);
    }
    let trickle = Trickle {
        bytes: pcap.bytes,
        at: 0,
        step: 3,
    };
    let mut reader = CaptureReader::from_reader("pipe", Box::new(trickle), 0).unwrap();
    assert_eq!(frames(&mut reader).len(), 50);
    assert!(reader.damage().is_none());
}

/// Classic pcap records are framed by twsleuth from the buffer; those of the "modified"
/// format (24-byte record headers) by pcap-parser. Both ways give the same frames.
#[test]
fn modified_pcap_gives_the_frames_of_plain_pcap() {
    let fixture = |name: &str| {
        let path = format!(
            "{}/../../fixtures/capture/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut reader = CaptureReader::open(&path, 0).unwrap();
        let got = frames(&mut reader);
        assert!(reader.damage().is_none(), "{name}");
        got
    };
    let plain = fixture("en10mb.pcap");
    assert_eq!(plain.len(), 613);
    assert_eq!(fixture("modified.pcap"), plain);
}

#[test]
fn gzip_and_zstd_are_detected_by_magic() {
    let pcap = Pcap::new(false, false, 1, 65535).record(7, 0, b"payload", 7);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::Write::write_all(&mut gz, &pcap.bytes).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&pcap.bytes[..], 3).unwrap();
    for (bytes, compression) in [
        (gz, twsleuth_reader::Compression::Gzip),
        (zst, twsleuth_reader::Compression::Zstd),
    ] {
        let mut reader = reader_over(bytes).unwrap();
        assert_eq!(reader.compression(), compression);
        let got = frames(&mut reader);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].3, b"payload");
    }
}

#[test]
fn pcapng_interfaces_keep_their_link_types_and_resolutions() {
    let mut bytes = shb();
    bytes.extend(idb(1, 0, None));
    bytes.extend(idb(113, 0, Some(9)));
    bytes.extend(idb(101, 0, Some(0x80 | 20)));
    bytes.extend(block(0xbad, b"custom block"));
    bytes.extend(epb(0, 1_700_000_000_250_000, b"us"));
    bytes.extend(epb(1, 1_700_000_000_250_000_001, b"ns"));
    bytes.extend(epb(2, (1_700_000_000u64 << 20) + (1 << 18), b"pow2"));
    let mut reader = reader_over(bytes).unwrap();
    let got = frames(&mut reader);
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0].1, got[0].2),
        (1_700_000_000_250_000_000, LinkType::ETHERNET)
    );
    assert_eq!(
        (got[1].1, got[1].2),
        (1_700_000_000_250_000_001, LinkType::LINUX_SLL)
    );
    assert_eq!(
        (got[2].1, got[2].2),
        (1_700_000_000_250_000_000, LinkType::RAW)
    );
    assert_eq!(got[2].3, b"pow2");
    assert_eq!(reader.counters().skipped_blocks, 1);
    assert_eq!(reader.counters().interfaces, 3);
}

#[test]
fn pcapng_packet_on_undeclared_interface_is_damage_not_a_panic() {
    let mut bytes = shb();
    bytes.extend(idb(1, 0, None));
    bytes.extend(epb(0, 1, b"ok"));
    bytes.extend(epb(5, 2, b"bad interface"));
    let mut reader = reader_over(bytes).unwrap();
    assert_eq!(frames(&mut reader).len(), 1);
    assert!(reader.damage().unwrap().to_string().contains("interface 5"));
}

#[test]
fn non_captures_are_refused_with_what_they_look_like() {
    let text = reader_over(b"12:00:00.000 IP 10.0.0.1.80 > 10.0.0.2.5000: Flags [S]\n".to_vec());
    let error = text.err().expect("text refused");
    assert!(matches!(error.kind, ReadErrorKind::NotACapture(_)));
    assert!(error.to_string().contains("text"), "{error}");
    let empty = reader_over(Vec::new()).err().expect("empty refused");
    assert!(matches!(empty.kind, ReadErrorKind::Empty));
    let cut_header = reader_over(vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0])
        .err()
        .unwrap();
    assert!(matches!(cut_header.kind, ReadErrorKind::BadHeader(_)));
}

/// Reads everything; must terminate and never panic.
fn drain(bytes: Vec<u8>) -> u64 {
    match reader_over(bytes) {
        Ok(mut reader) => {
            let mut n = 0;
            while reader.advance() {
                let frame = reader.current().expect("frame after advance");
                // Blocks Wireshark numbers as frames (custom, systemd journal) take a number.
                assert_eq!(frame.number, n + 1 + reader.counters().numbered_blocks);
                n += 1;
            }
            assert_eq!(reader.counters().frames, n);
            n
        }
        Err(_) => 0,
    }
}

fn sample_pcapng() -> Vec<u8> {
    let mut bytes = shb();
    bytes.extend(idb(1, 0, None));
    bytes.extend(idb(113, 0, Some(0x80 | 10)));
    for i in 0..6u8 {
        bytes.extend(epb(u32::from(i % 2), u64::from(i) * 1000, &[i; 33]));
    }
    bytes
}

fn sample_pcap() -> Vec<u8> {
    let mut pcap = Pcap::new(false, false, 1, 65535);
    for i in 0..6u32 {
        pcap = pcap.record(i, i, &[i as u8; 37], 60);
    }
    pcap.bytes
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        drain(bytes);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        pcapng in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = if pcapng { shb() } else { Pcap::new(false, false, 1, 65535).bytes };
        bytes.extend(tail);
        drain(bytes);
    }

    #[test]
    fn mutated_captures_never_panic(
        pcapng in any::<bool>(),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = if pcapng { sample_pcapng() } else { sample_pcap() };
        for (at, value) in mutations {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let len = bytes.len();
        bytes.truncate(cut.index(len + 1).max(1));
        drain(bytes);
    }
}

/// A reader opened with `open_hashing` gives the SHA-256 of the file's bytes (compressed bytes
/// for compressed input) once it has read them all, and nothing when reading stopped early.
#[test]
fn the_hash_is_of_the_whole_file_and_only_once_read_to_its_end() {
    use sha2::{Digest, Sha256};
    let fixtures = format!("{}/../../fixtures/capture", env!("CARGO_MANIFEST_DIR"));
    for name in [
        "en10mb.pcap",
        "en10mb.pcap.gz",
        "en10mb.pcap.zst",
        "multi.pcapng",
    ] {
        let path = format!("{fixtures}/{name}");
        let expected: [u8; 32] = Sha256::digest(std::fs::read(&path).unwrap()).into();
        let mut reader = CaptureReader::open_hashing(&path, 0).unwrap();
        assert_eq!(reader.sha256(), None, "{name}: nothing read yet");
        while reader.advance() {}
        assert!(reader.damage().is_none(), "{name}");
        assert_eq!(reader.sha256(), Some(expected), "{name}");
        let mut plain = CaptureReader::open(&path, 0).unwrap();
        while plain.advance() {}
        assert_eq!(plain.sha256(), None, "{name}: not asked for");
    }
    // A record claiming 2^31 bytes stops the reading before the end of the file.
    let mut reader =
        CaptureReader::open_hashing(&format!("{fixtures}/corrupt-caplen.pcap"), 0).unwrap();
    while reader.advance() {}
    assert!(reader.damage().is_some());
    assert_eq!(reader.sha256(), None);
}

fn fixture_path(name: &str) -> String {
    format!(
        "{}/../../fixtures/capture/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Every file of fixtures/capture/foreign (formats Wireshark reads and twsleuth does not) is
/// named as its format, with what to do, never as "not a capture" or by its magic bytes.
#[test]
fn foreign_formats_are_named_with_what_to_do() {
    let expected = [
        (
            "sniffer-dos.cap",
            "Sniffer (DOS)",
            "editcap -F pcapng sniffer-dos.cap sniffer-dos.pcapng",
        ),
        (
            "sniffer-windows.cap",
            "Sniffer (Windows)",
            "editcap -F pcapng",
        ),
        ("solaris.snoop", "Solaris snoop", "editcap -F pcapng"),
        ("netmon2.cap", "Network Monitor 2.x", "editcap -F pcapng"),
        (
            "k12.txt",
            "K12 text",
            "editcap -T ether -F pcapng k12.txt k12.pcapng",
        ),
        ("ethernet.erf", "Endace ERF", "editcap -T ether -F pcapng"),
        ("hci.btsnoop", "btsnoop", "Bluetooth HCI"),
        ("iptrace-1.0.bin", "iptrace 1.0", "editcap -F pcapng"),
        ("iptrace-2.0.bin", "iptrace 2.0", "editcap -F pcapng"),
        ("nstrace-1.0.cap", "nstrace 1.0", "-traceFormat PCAP"),
        ("nstrace-2.0.cap", "nstrace 2.0", "-traceFormat PCAP"),
        ("nstrace-3.0.cap", "nstrace 3.0", "-traceFormat PCAP"),
        ("nstrace-3.5.cap", "nstrace 3.5", "-traceFormat PCAP"),
        ("ascend.txt", "Ascend", "editcap -T rawip -F pcapng"),
        ("netscreen.txt", "NetScreen", "editcap -T ether -F pcapng"),
    ];
    let dir = fixture_path("foreign");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        expected.len(),
        "a fixture in foreign/ without an expectation here"
    );
    for (name, format, advice) in expected {
        let error = CaptureReader::open(&format!("{dir}/{name}"), 0)
            .err()
            .unwrap_or_else(|| panic!("{name} was read"));
        let message = error.to_string();
        assert!(
            matches!(error.kind, ReadErrorKind::ForeignFormat { .. }),
            "{name}: {message}"
        );
        assert!(
            message.contains(format) && message.contains(advice),
            "{name}: {message}"
        );
        for never in ["not a capture", "magic", "tcpdump -w"] {
            assert!(!message.contains(never), "{name}: {message}");
        }
    }
}

/// Obsolete pcapng Packet Blocks (type 2) are frames like EPBs: the same 40 frames as the
/// classic pcap they were written from, with the one comment.
#[test]
fn obsolete_packet_blocks_give_the_frames_of_their_source() {
    let mut pb = CaptureReader::open(&fixture_path("obsolete-pb.pcapng"), 0).unwrap();
    let mut en = CaptureReader::open(&fixture_path("en10mb.pcap"), 0).unwrap();
    let mut comments = Vec::new();
    while pb.advance() {
        assert!(en.advance());
        let (a, b) = (pb.current().unwrap(), en.current().unwrap());
        assert_eq!(
            (a.number, a.ts_ns, a.data, a.orig_len),
            (b.number, b.ts_ns, b.data, b.orig_len)
        );
        if let Some(c) = a.comment {
            comments.push((a.number, c.to_string()));
        }
    }
    assert!(pb.damage().is_none());
    assert_eq!(pb.counters().frames, 40);
    assert_eq!(pb.counters().obsolete_packet_blocks, 40);
    assert_eq!(
        comments,
        [(3, "third frame, in an obsolete Packet Block".to_string())]
    );
}

/// Comments written by editcap stay with their frames; the section comment with every frame.
#[test]
fn packet_and_section_comments_stay_with_their_frames() {
    let mut reader = CaptureReader::open(&fixture_path("comments.pcapng"), 0).unwrap();
    let mut comments = Vec::new();
    while reader.advance() {
        let frame = reader.current().unwrap();
        assert_eq!(
            frame.section_comment,
            Some("capture comment: made by make_edge_fixtures.py with editcap -a")
        );
        if let Some(c) = frame.comment {
            comments.push((frame.number, c.to_string()));
        }
    }
    assert_eq!(
        comments,
        [
            (2, "second frame's note".to_string()),
            (5, "<b>bold</b> & \"quoted\"".to_string()),
            (7, "résumé ✓ line one\nline two".to_string()),
        ]
    );
    assert_eq!(reader.counters().packet_comments, 3);
    assert_eq!(reader.counters().section_comments.len(), 1);
}

/// Several comments on one packet are joined; one that is not UTF-8 is shown with U+FFFD.
#[test]
fn several_and_invalid_comments_are_kept() {
    let mut bytes = shb();
    bytes.extend(idb(1, 0, None));
    let mut with_options = epb(0, 5, b"frame");
    // Replace the trailing length with options: two comments, one not UTF-8.
    with_options.truncate(with_options.len() - 4);
    for value in [&b"first"[..], &b"bad \xff byte"[..]] {
        with_options.extend_from_slice(&1u16.to_le_bytes());
        with_options.extend_from_slice(&(value.len() as u16).to_le_bytes());
        with_options.extend_from_slice(value);
        with_options.resize(with_options.len().div_ceil(4) * 4, 0);
    }
    with_options.extend_from_slice(&[0, 0, 0, 0]);
    let total = (with_options.len() + 4) as u32;
    with_options[4..8].copy_from_slice(&total.to_le_bytes());
    with_options.extend_from_slice(&total.to_le_bytes());
    bytes.extend(with_options);
    bytes.extend(epb(0, 6, b"plain"));
    let mut reader = reader_over(bytes).unwrap();
    assert!(reader.advance());
    assert_eq!(
        reader.current().unwrap().comment,
        Some("first\nbad \u{fffd} byte")
    );
    assert!(reader.advance());
    assert_eq!(reader.current().unwrap().comment, None);
    assert!(reader.damage().is_none());
}

/// A pcapng block whose two length fields disagree is described by its fields, not by the
/// parser's internals.
#[test]
fn a_corrupt_block_is_described_in_plain_words() {
    let mut reader = CaptureReader::open(&fixture_path("corrupt.pcapng"), 0).unwrap();
    while reader.advance() {}
    let message = reader.damage().unwrap().to_string();
    assert!(
        message.contains("an Enhanced Packet Block (type 0x6) says it is 76 bytes long at its start but 84 at its end"),
        "{message}"
    );
    assert!(!message.contains("verification"), "{message}");
}

#[test]
fn an_unknown_format_version_is_a_warning_not_an_error() {
    let mut pcap = Pcap::new(false, false, 1, 65535).record(1, 0, b"x", 1);
    pcap.bytes[4..6].copy_from_slice(&3u16.to_le_bytes());
    let mut reader = reader_over(pcap.bytes).unwrap();
    assert_eq!(frames(&mut reader).len(), 1);
    assert!(
        reader.warnings()[0].contains("pcap version 3.4"),
        "{:?}",
        reader.warnings()
    );
    let mut bytes = shb();
    bytes[12..14].copy_from_slice(&2u16.to_le_bytes());
    bytes.extend(idb(1, 0, None));
    bytes.extend(epb(0, 1, b"y"));
    let mut reader = reader_over(bytes).unwrap();
    assert_eq!(frames(&mut reader).len(), 1);
    assert!(
        reader.warnings()[0].contains("pcapng version 2.0"),
        "{:?}",
        reader.warnings()
    );
}

/// pcapng with obsolete Packet Blocks and commented EPBs, for the mutation test.
fn sample_pcapng_with_comments() -> Vec<u8> {
    let mut bytes = shb();
    bytes.extend(idb(1, 0, None));
    for i in 0..4u8 {
        let mut body = Vec::new();
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&u32::from(i).to_le_bytes());
        body.extend_from_slice(&5u32.to_le_bytes());
        body.extend_from_slice(&5u32.to_le_bytes());
        body.extend_from_slice(&[i; 8]);
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&3u16.to_le_bytes());
        body.extend_from_slice(b"abc\0");
        body.extend_from_slice(&[0, 0, 0, 0]);
        bytes.extend(block(2, &body));
    }
    bytes
}

proptest! {
    #[test]
    fn mutated_obsolete_packet_blocks_and_comments_never_panic(
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sample_pcapng_with_comments();
        for (at, value) in mutations {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let len = bytes.len();
        bytes.truncate(cut.index(len + 1).max(1));
        if let Ok(mut reader) = reader_over(bytes) {
            while reader.advance() {
                let frame = reader.current().expect("frame after advance");
                std::hint::black_box(frame.comment.map(str::len));
            }
        }
    }
}

#[test]
fn the_obsolete_packet_block_sample_reads_whole() {
    let mut reader = reader_over(sample_pcapng_with_comments()).unwrap();
    let mut comments = 0;
    while reader.advance() {
        let frame = reader.current().unwrap();
        assert_eq!(frame.data.len(), 5);
        comments += usize::from(frame.comment == Some("abc"));
    }
    assert!(reader.damage().is_none(), "{:?}", reader.damage());
    assert_eq!(comments, 4);
}
