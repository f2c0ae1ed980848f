//! What the first bytes of a file say it is: a capture twsleuth reads, a tar archive of
//! captures, a capture format it does not read (named, with the command that converts it), or
//! something else (described in a few words). Names never decide: people rename files.

use std::io::Read;

use crate::error::ReadErrorKind;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// A tar header block is 512 bytes; POSIX ustar and GNU tar write "ustar" at byte 257.
const TAR_BLOCK_BYTES: usize = 512;
const TAR_MAGIC_AT: usize = 257;
/// How many (decompressed) bytes are looked at to tell formats apart: a tar header, or the
/// first lines of a text trace.
pub(crate) const SNIFF_BYTES: usize = 4096;

/// What the first bytes of a file are.
#[derive(Debug)]
pub(crate) enum Sniffed {
    /// pcap or pcapng, possibly gzip- or zstd-compressed.
    Capture,
    /// A tar archive, possibly gzip- or zstd-compressed.
    Tar { compressed: bool },
    /// Nothing at all.
    Empty,
    /// Anything else, with the reason it is not read.
    Other(ReadErrorKind),
}

/// Looks at the start of a file (`head`: its first bytes as stored, compressed or not);
/// `name` is used in the conversion command of a foreign format.
pub(crate) fn sniff(head: &[u8], name: &str) -> Sniffed {
    if head.is_empty() {
        return Sniffed::Empty;
    }
    let (plain, compressed) = decompress_head(head);
    if is_tar(&plain) {
        return Sniffed::Tar { compressed };
    }
    if is_capture_magic(&plain) {
        return Sniffed::Capture;
    }
    if compressed && plain.is_empty() {
        return Sniffed::Other(ReadErrorKind::NotACapture(
            "compressed, but nothing comes out of the decompression".into(),
        ));
    }
    Sniffed::Other(describe_unknown(&plain, name))
}

/// The first bytes after gzip or zstd decompression (a damaged stream gives what came out
/// before the damage), and whether the file was compressed.
fn decompress_head(head: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(SNIFF_BYTES);
    if head.starts_with(&GZIP_MAGIC) {
        let decoder = flate2::read::MultiGzDecoder::new(head);
        read_what_comes(decoder, &mut out);
        (out, true)
    } else if head.starts_with(&ZSTD_MAGIC) {
        if let Ok(decoder) = zstd::stream::read::Decoder::new(head) {
            read_what_comes(decoder, &mut out);
        }
        (out, true)
    } else {
        out.extend_from_slice(&head[..head.len().min(SNIFF_BYTES)]);
        (out, false)
    }
}

/// Up to [`SNIFF_BYTES`] of a decoder's output: the head given to it is cut short, so it
/// ends in an error after the bytes that matter.
fn read_what_comes(decoder: impl Read, out: &mut Vec<u8>) {
    let mut decoder = decoder.take(SNIFF_BYTES as u64);
    let mut chunk = [0u8; 1024];
    while let Ok(n @ 1..) = decoder.read(&mut chunk) {
        out.extend_from_slice(&chunk[..n]);
    }
}

/// A ustar or GNU tar header ("ustar\0" or "ustar " at byte 257). Version 7 tars have no
/// magic and are not recognised; no archiver has written them by default for decades.
fn is_tar(plain: &[u8]) -> bool {
    plain.len() >= TAR_BLOCK_BYTES && plain[TAR_MAGIC_AT..].starts_with(b"ustar")
}

/// The pcap and pcapng magic numbers, in either byte order.
pub(crate) fn is_capture_magic(plain: &[u8]) -> bool {
    matches!(
        plain.get(..4),
        Some(
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x34, 0xcd, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xcd, 0x34]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
    )
}

/// How a foreign capture becomes one twsleuth reads.
#[derive(Clone, Copy)]
enum Convert {
    /// `editcap -F pcapng IN OUT` keeps every packet and its link type.
    Editcap,
    /// editcap with `-T ENCAP`: the format's own encapsulation has no pcap link type, but its
    /// records hold frames of this one (checked with editcap 4.0 on the fixtures in
    /// fixtures/capture/foreign).
    EditcapAs(&'static str),
    /// Wireshark reads the format but cannot write its records as pcap or pcapng.
    Unconvertible(&'static str),
    /// The format carries no IP traffic: converting it would not help.
    NoIp(&'static str),
}

/// Capture formats of other tools, by their fixed first bytes (Wireshark's wiretap/*.c
/// `*_open` functions check the same bytes).
const FOREIGN_MAGIC: &[(&[u8], &str, Convert)] = &[
    (
        b"TRSNIFF data    \x1a",
        "a Sniffer (DOS) capture",
        Convert::Editcap,
    ),
    (
        b"XCP\0",
        "a NetXRay / Sniffer (Windows) capture",
        Convert::Editcap,
    ),
    (b"snoop\0\0\0", "a Solaris snoop capture", Convert::Editcap),
    (
        b"GMBU",
        "a Microsoft Network Monitor 2.x capture",
        Convert::Editcap,
    ),
    (
        b"RTSS",
        "a Microsoft Network Monitor 1.x capture",
        Convert::Editcap,
    ),
    (
        b"iptrace 1.0",
        "an AIX iptrace 1.0 capture",
        Convert::Editcap,
    ),
    (
        b"iptrace 2.0",
        "an AIX iptrace 2.0 capture",
        Convert::Editcap,
    ),
    (
        b"ObserverPktBufferVersion=",
        "a Viavi (Network Instruments) Observer capture",
        Convert::Editcap,
    ),
    (
        b"\x05VNF",
        "a Visual Networks traffic capture",
        Convert::Editcap,
    ),
    (
        b"btsnoop\0",
        "a btsnoop capture (Android, Symbian)",
        Convert::NoIp("it holds Bluetooth HCI traffic, not IP: there is no TCP in it to analyse"),
    ),
];

/// NetScaler (Citrix ADC) nstrace signatures: version 1.0 puts its signature record's text at
/// byte 8, later versions at byte 3 (Wireshark's wiretap/netscaler.c, `nspm_signature_version`).
const NSTRACE_SIGNATURES: &[(usize, &[u8], &str)] = &[
    (8, b"NetScaler Performance Data", "1.0"),
    (3, b"NetScaler V20 Performance Data", "2.0"),
    (3, b"NetScaler V21 Performance Data", "2.1"),
    (3, b"NetScaler V22 Performance Data", "2.2"),
    (3, b"Netscaler V30 Performance Data", "3.0"),
    (3, b"Netscaler V35 Performance Data", "3.5"),
];

/// Explains why a file is not read, in the words of someone holding it.
pub(crate) fn describe_unknown(head: &[u8], name: &str) -> ReadErrorKind {
    if is_tar(head) {
        return ReadErrorKind::NotACapture(
            "a tar archive: give its file name (standard input is read as a single capture)".into(),
        );
    }
    if let Some(&(_, format, convert)) = FOREIGN_MAGIC
        .iter()
        .find(|(magic, _, _)| head.starts_with(magic))
    {
        return foreign(format.to_string(), convert, name);
    }
    if let Some((_, _, version)) = NSTRACE_SIGNATURES
        .iter()
        .find(|(at, signature, _)| head.get(*at..).is_some_and(|h| h.starts_with(signature)))
    {
        return foreign(
            format!("a NetScaler (Citrix ADC) nstrace {version} capture"),
            Convert::Unconvertible(
                "Wireshark reads it, but editcap and tshark cannot write its records as pcap or \
                 pcapng; record the trace again in pcap format on the NetScaler \
                 (`start nstrace -traceFormat PCAP`)",
            ),
            name,
        );
    }
    if is_erf(head) {
        return foreign(
            "an Endace ERF capture".into(),
            Convert::EditcapAs("ether"),
            name,
        );
    }
    let simple: &[(&[u8], &str)] = &[
        (b"\x7fELF", "a program (ELF executable), not a capture"),
        (b"PK\x03\x04", "a zip archive: extract the capture first"),
        (
            b"7z\xbc\xaf\x27\x1c",
            "a 7-Zip archive: extract the capture first",
        ),
        (
            b"BZh",
            "bzip2-compressed: decompress it first (`bunzip2`; only gzip and zstd are read directly)",
        ),
        (
            b"\xfd7zXZ",
            "xz-compressed: decompress it first (`unxz`; only gzip and zstd are read directly)",
        ),
        (
            b"\x04\x22\x4d\x18",
            "lz4-compressed: decompress it first (`lz4 -d`; only gzip and zstd are read directly)",
        ),
        (b"%PDF", "a PDF document, not a capture"),
    ];
    if let Some((_, what)) = simple.iter().find(|(magic, _)| head.starts_with(magic)) {
        return ReadErrorKind::NotACapture((*what).to_string());
    }
    if let Some(kind) = describe_text(head, name) {
        return kind;
    }
    let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
    ReadErrorKind::NotACapture(format!(
        "it starts with the bytes {}, which begin no capture format twsleuth knows of (pcap, \
         pcapng) nor any other it can name",
        hex.join(" ")
    ))
}

/// Text traces that Wireshark reads (and tcpdump's own printout, which no tool reads back).
fn describe_text(head: &[u8], name: &str) -> Option<ReadErrorKind> {
    // Text: UTF-8 (a character cut by the end of the head aside) without control characters.
    let sample = &head[..head.len().min(512)];
    let valid = match std::str::from_utf8(sample) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&sample[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    if valid.is_empty() || valid.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return None;
    }
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text.lines().take(40).collect();
    if lines
        .first()
        .is_some_and(|l| l.starts_with("+---------+---------------+----------+"))
    {
        return Some(foreign(
            "a K12 text trace (Tektronix / Catapult)".into(),
            Convert::EditcapAs("ether"),
            name,
        ));
    }
    // Wireshark's wiretap/ascend_parser.y: records start "XMIT-", "RECV-", "PRI-XMIT-",
    // "PRI-RECV-" or "WD_DIALOUT_DISP:", and give a length in "octets".
    let ascend_prefixes = [
        "XMIT-",
        "RECV-",
        "PRI-XMIT-",
        "PRI-RECV-",
        "WD_DIALOUT_DISP:",
    ];
    if lines.iter().any(|l| {
        ascend_prefixes.iter().any(|p| l.starts_with(p))
            && (l.contains("octets") || l.contains(':'))
    }) {
        return Some(foreign(
            "a Lucent/Ascend router trace (text)".into(),
            Convert::EditcapAs("rawip"),
            name,
        ));
    }
    // wiretap/netscreen.c looks for "(i) len=" or "(o) len=" in the first lines.
    if lines
        .iter()
        .any(|l| l.contains("(i) len=") || l.contains("(o) len="))
    {
        return Some(foreign(
            "a NetScreen (Juniper ScreenOS) snoop trace (text)".into(),
            Convert::EditcapAs("ether"),
            name,
        ));
    }
    let tcpdump_line = |l: &&str| {
        let b = l.as_bytes();
        b.len() > 9
            && b[2] == b':'
            && b[5] == b':'
            && b[8] == b'.'
            && b[..8].iter().filter(|c| c.is_ascii_digit()).count() == 6
    };
    if lines.iter().take(5).any(tcpdump_line) {
        return Some(ReadErrorKind::NotACapture(
            "it is tcpdump's text printout, which no tool can read back as packets: capture again \
             with `tcpdump -w FILE` (add `-s 0` on old versions) and give that file"
                .into(),
        ));
    }
    let first = lines.iter().find(|l| !l.trim().is_empty()).unwrap_or(&"");
    let shown: String = first.trim().chars().take(40).collect();
    let more = if first.trim().chars().count() > 40 {
        "…"
    } else {
        ""
    };
    Some(ReadErrorKind::NotACapture(format!(
        "it is text, starting with {:?}",
        format!("{shown}{more}")
    )))
}

/// ERF has no magic number: the first record header must be plausible (a known record type,
/// a length that is a multiple of 8 and holds the 16-byte header, a timestamp of 1990-2100 or
/// zero), and so must the next one when the head holds it (Wireshark's wiretap/erf.c checks
/// the first records the same way).
fn is_erf(head: &[u8]) -> bool {
    fn record_ok(record: &[u8]) -> Option<usize> {
        let header: &[u8; 16] = record.get(..16)?.try_into().ok()?;
        let seconds = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let record_type = header[8] & 0x7f;
        let rlen = usize::from(u16::from_be_bytes([header[10], header[11]]));
        let plausible_time = seconds == 0 || (631_152_000..4_102_444_800).contains(&seconds);
        // Types 1-27 are assigned (ERF_TYPE_HDLC_POS .. ERF_TYPE_META), 48 is padding.
        let known_type = (1..=27).contains(&record_type) || record_type == 48;
        (plausible_time && known_type && rlen >= 16 && rlen % 8 == 0).then_some(rlen)
    }
    let Some(first) = record_ok(head) else {
        return false;
    };
    match head.get(first..) {
        Some(rest) if rest.len() >= 16 => record_ok(rest).is_some(),
        _ => true,
    }
}

fn foreign(format: String, convert: Convert, name: &str) -> ReadErrorKind {
    let base = name.rsplit(['/', ':']).next().unwrap_or(name);
    let out = output_name(base);
    // A member of an archive (`a10.tgz:core3.cap`) has to come out of it first.
    let first = if name.contains(':') {
        "extract it from the archive and "
    } else {
        ""
    };
    let advice = match convert {
        Convert::Editcap => format!(
            "{first}convert it with `editcap -F pcapng {} {}` and give twsleuth the .pcapng",
            shell_word(base),
            shell_word(&out)
        ),
        Convert::EditcapAs(encap) => format!(
            "{first}convert it with `editcap -T {encap} -F pcapng {} {}` and give twsleuth the \
             .pcapng \
             (plain `-F pcapng` fails or keeps a link type twsleuth does not decode)",
            shell_word(base),
            shell_word(&out)
        ),
        Convert::Unconvertible(advice) | Convert::NoIp(advice) => advice.to_string(),
    };
    ReadErrorKind::ForeignFormat { format, advice }
}

/// `trace.cap` → `trace.pcapng`, `trace` → `trace.pcapng`.
fn output_name(base: &str) -> String {
    let stem = match base.rfind('.') {
        Some(dot) if dot > 0 => &base[..dot],
        _ => base,
    };
    format!("{stem}.pcapng")
}

/// A file name as a shell word: quoted when it holds anything but the safe characters.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-+,@%/=".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(head: &[u8]) -> String {
        describe_unknown(head, "dir/trace.cap").to_string()
    }

    #[test]
    fn text_is_described_by_its_first_line() {
        assert_eq!(
            message(b"Hello world\nsecond line\n"),
            "not a capture: it is text, starting with \"Hello world\""
        );
    }

    #[test]
    fn text_in_any_language_is_text() {
        assert_eq!(
            message("Résumé du dépannage\n".as_bytes()),
            "not a capture: it is text, starting with \"Résumé du dépannage\""
        );
        let mut tar = vec![0u8; 1024];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert!(message(&tar).contains("a tar archive: give its file name"));
    }

    #[test]
    fn tcpdump_printout_is_named() {
        let m = message(b"15:04:05.123456 IP 10.0.0.1.80 > 10.0.0.2.5000: Flags [S]\n");
        assert!(m.contains("tcpdump's text printout"), "{m}");
    }

    #[test]
    fn foreign_formats_give_a_conversion_command_with_the_file_name() {
        let m = message(b"snoop\0\0\0\0\0\0\x02\0\0\0\x04");
        assert!(m.contains("Solaris snoop"), "{m}");
        assert!(
            m.contains("`editcap -F pcapng trace.cap trace.pcapng`"),
            "{m}"
        );
        assert!(!m.contains("not a capture"), "{m}");
    }

    #[test]
    fn a_member_of_an_archive_is_extracted_first() {
        let m = describe_unknown(b"snoop\0\0\0\0\0\0\x02", "bundle.tgz:dir/old.snoop").to_string();
        assert!(
            m.contains("extract it from the archive and convert it with `editcap -F pcapng old.snoop old.pcapng`"),
            "{m}"
        );
    }

    #[test]
    fn nstrace_versions_are_told_apart() {
        let mut v20 = vec![0x01, 34, 0];
        v20.extend_from_slice(b"NetScaler V20 Performance Data\0");
        assert!(message(&v20).contains("nstrace 2.0"));
        let mut v10 = vec![0x01, 0x01, 64, 0, 0, 0, 0, 0];
        v10.extend_from_slice(b"NetScaler Performance Data");
        assert!(message(&v10).contains("nstrace 1.0"));
    }

    #[test]
    fn unknown_binary_shows_its_first_bytes_in_words() {
        let m = message(&[0xde, 0xad, 0xbe, 0xef, 0x00]);
        assert!(
            m.contains("de ad be ef") && m.contains("no capture format"),
            "{m}"
        );
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("a.cap"), "a.cap");
        assert_eq!(shell_word("my trace.cap"), "'my trace.cap'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn tar_and_captures_are_recognised_through_compression() {
        let mut tar = vec![0u8; 1024];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert!(matches!(
            sniff(&tar, "x"),
            Sniffed::Tar { compressed: false }
        ));
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &tar).unwrap();
            e.finish().unwrap()
        };
        assert!(matches!(sniff(&gz, "x"), Sniffed::Tar { compressed: true }));
        let zst = zstd::encode_all(&[0xd4u8, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0][..], 1).unwrap();
        assert!(matches!(sniff(&zst, "x"), Sniffed::Capture));
        assert!(matches!(sniff(b"", "x"), Sniffed::Empty));
    }
}
