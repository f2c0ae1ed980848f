//! F5 BIG-IP capture metadata: the Ethernet trailer a BIG-IP's `tcpdump -i 0.0:nnn` appends
//! after each IP packet, and the "fileinfo" pseudo-packet its tcpdump writes first.
//!
//! The reference is Wireshark's dissector (`epan/dissectors/packet-f5ethtrailer.c`): how a
//! trailer is found (after Ethernet padding, or after an FCS for the new format), both formats
//! (the legacy chain of type-length-version records of BIG-IP 9.4.2 to 13.x, and the format of
//! 14.0 and later that starts `F5 DE B0 F5`), which versions of each record are read and where
//! their fields are. Only the fields below are kept: the trailer's bytes are never stored,
//! printed or exported, because the new format can carry TLS secrets (its provider 4), which
//! is not read at all.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::segment::{FrameRef, TcpFlags};

/// The trailer format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum F5TrailerFormat {
    /// BIG-IP 9.4.2 to 13.x: a chain of records of 1-byte type, length and version.
    Legacy,
    /// BIG-IP 14.0 and later: a header starting `F5 DE B0 F5`, then records of 2-byte
    /// provider, type, length and version.
    New,
}

/// The noise levels a trailer holds (`tcpdump -i 0.0:n`, `:nn`, `:nnn`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct F5Noise {
    /// Low: direction, TMM, virtual server.
    pub low: bool,
    /// Medium: flow ids, RST cause.
    pub medium: bool,
    /// High: the peer flow's addresses and ports.
    pub high: bool,
}

/// The other side of the connection through the BIG-IP (high noise): for a client-side
/// packet, the server-side flow, and the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct F5Peer {
    /// IP protocol of the peer flow (0 before BIG-IP 11.0, which did not fill it in).
    pub ip_protocol: u8,
    /// VLAN of the peer flow.
    pub vlan: u16,
    /// Remote address of the peer flow (an IPv4 address when the trailer holds it as
    /// IPv4-mapped, or with a route domain).
    pub remote_addr: IpAddr,
    /// Route domain of the remote address, when it has one.
    pub remote_route_domain: Option<u16>,
    /// Local (BIG-IP's) address of the peer flow.
    pub local_addr: IpAddr,
    /// Route domain of the local address, when it has one.
    pub local_route_domain: Option<u16>,
    /// Remote port of the peer flow.
    pub remote_port: u16,
    /// Local port of the peer flow.
    pub local_port: u16,
}

/// An interned string of the F5 trailers (a virtual server name or an RST cause): resolve it
/// with [`crate::Decoder::f5_name`]. Interning keeps [`F5Trailer`] a small `Copy` value and
/// lets each name be counted once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct F5NameId(pub u32);

/// One frame's F5 trailer, parsed. The trailer's bytes are not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct F5Trailer {
    /// Format of the trailer.
    pub format: F5TrailerFormat,
    /// Noise levels found.
    pub noise: F5Noise,
    /// Direction through the BIG-IP: `true` for a packet coming in (low noise).
    pub ingress: Option<bool>,
    /// TMM (traffic management microkernel instance) that handled the packet (low noise).
    pub tmm: Option<u8>,
    /// Virtual server name (low noise), when the packet belongs to one.
    pub virtual_server: Option<F5NameId>,
    /// Flow id (medium noise; low noise in BIG-IP 9.4).
    pub flow_id: Option<u64>,
    /// Peer flow id: the flow on the other side of the BIG-IP (0 when there is none).
    pub peer_flow_id: Option<u64>,
    /// Why the BIG-IP reset the connection (medium noise, on RSTs it sent).
    pub rst_cause: Option<F5NameId>,
    /// The peer flow (high noise), given only when the peer flow id is not 0, as Wireshark
    /// does.
    pub peer: Option<F5Peer>,
}

/// The fields of the F5 "fileinfo" pseudo-packet (ethertype 0x05FF, first frame of a BIG-IP
/// 11.2+ tcpdump): what captured the file. Not traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct F5FileInfo {
    /// The input it was found in (index in the order the inputs were named).
    pub file_index: u16,
    /// Its frame number in that input.
    pub frame_number: u64,
    /// The tcpdump command line (`CMD:`).
    pub command: Option<String>,
    /// BIG-IP software version (`VER:`).
    pub version: Option<String>,
    /// Host name (`HOST:`).
    pub hostname: Option<String>,
    /// Platform id, e.g. `Z100` for Virtual Edition (`PLAT:`).
    pub platform: Option<String>,
    /// Product (`PROD:`).
    pub product: Option<String>,
}

/// A trailer found in a frame, its strings still borrowed from the frame.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ParsedTrailer<'a> {
    pub new_format: bool,
    pub noise: F5Noise,
    pub ingress: Option<bool>,
    pub tmm: Option<u8>,
    pub virtual_server: Option<&'a [u8]>,
    pub flow_id: Option<u64>,
    pub peer_flow_id: Option<u64>,
    pub rst_cause: Option<&'a [u8]>,
    pub peer: Option<F5Peer>,
}

/// The new format's magic number (Wireshark's `F5_DPT_V1_HDR_MAGIC`).
const NEW_FORMAT_MAGIC: u32 = 0xf5de_b0f5;
/// New format header: magic, length, version.
const NEW_HEADER_BYTES: usize = 8;
/// New format record header: provider, type, length, version.
const NEW_RECORD_HEADER_BYTES: usize = 8;
/// The provider of the noise records (the TLS provider, 4, is never read).
const PROVIDER_NOISE: u16 = 1;
/// The shortest trailer: a legacy low-noise record of version 1 without a name.
const MIN_TRAILER_BYTES: usize = 7;
/// Legacy record lengths Wireshark takes as sane (`F5_MIN_SANE`, `F5_MAX_SANE`).
const LEGACY_MIN_BYTES: usize = 7;
const LEGACY_MAX_BYTES: usize = 140;
/// The highest legacy record version (`F5TRAILER_VER_MAX`).
const LEGACY_MAX_VERSION: u8 = 3;
const TYPE_LOW: u8 = 1;
const TYPE_MEDIUM: u8 = 2;
const TYPE_HIGH: u8 = 3;

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the F5 trailer in `after_ip`, the bytes of an Ethernet frame after its IP packet
/// (Wireshark's `eth.trailer`), as Wireshark's `dissect_f5ethtrailer` finds it: leading zero
/// bytes (Ethernet padding added before the BIG-IP appended its trailer) are skipped; a new
/// format trailer may also start 4 bytes further on (after an FCS). Byte-by-byte search
/// (Wireshark's `walk_trailer` preference, off by default) is not done. `None` when no noise
/// record is found.
pub(crate) fn parse_trailer(after_ip: &[u8]) -> Option<ParsedTrailer<'_>> {
    let offset = after_ip.iter().position(|&b| b != 0)?;
    let remaining = after_ip.len() - offset;
    if remaining < MIN_TRAILER_BYTES {
        return None;
    }
    let mut parsed = ParsedTrailer::default();
    if remaining >= 4 + NEW_HEADER_BYTES {
        // Wireshark tries the magic where the zeros end, then up to 4 bytes later (after an
        // FCS) but no earlier than the frame's end of IP (an FCS may begin with zeros).
        for at in std::iter::once(offset).chain((0..=offset.min(4)).map(|i| offset + 4 - i)) {
            if be32(after_ip, at) == Some(NEW_FORMAT_MAGIC) {
                // The right magic with a length beyond the bytes: not a trailer, or corrupt.
                if usize::from(be16(after_ip, at + 4)?) > remaining {
                    return None;
                }
                parsed.new_format = true;
                new_format(&after_ip[at..], &mut parsed);
                return recognised(parsed);
            }
        }
    }
    let bytes = &after_ip[offset..];
    legacy_record(bytes)?;
    legacy_chain(bytes, &mut parsed);
    recognised(parsed)
}

fn recognised(parsed: ParsedTrailer<'_>) -> Option<ParsedTrailer<'_>> {
    let noise = parsed.noise;
    (noise.low || noise.medium || noise.high).then_some(parsed)
}

/// A legacy record's type, length (whole record) and version, when Wireshark takes it for
/// one.
fn legacy_record(bytes: &[u8]) -> Option<(u8, usize, u8)> {
    let &[kind, length, version, ..] = bytes else {
        return None;
    };
    let length = usize::from(length) + 2;
    let sane = (TYPE_LOW..=TYPE_HIGH).contains(&kind)
        && (LEGACY_MIN_BYTES..=LEGACY_MAX_BYTES).contains(&length)
        && length <= bytes.len()
        && version <= LEGACY_MAX_VERSION;
    sane.then_some((kind, length, version))
}

/// The legacy chain of records (Wireshark's `dissect_old_trailer`), up to the first record
/// that is not one or not of a known version.
fn legacy_chain<'a>(bytes: &'a [u8], parsed: &mut ParsedTrailer<'a>) {
    let mut at = 0;
    let mut peer = None;
    while let Some((kind, length, version)) = legacy_record(&bytes[at..]) {
        let record = &bytes[at..at + length];
        let known = match kind {
            TYPE_LOW => legacy_low(record, version, parsed),
            TYPE_MEDIUM => legacy_medium(record, version, parsed),
            _ => {
                let known = legacy_high(record, version, &mut peer);
                parsed.noise.high |= known;
                known
            }
        };
        if !known {
            break;
        }
        at += length;
    }
    parsed.peer = peer.filter(|_| parsed.peer_flow_id.is_some_and(|id| id != 0));
}

/// Wireshark's `dissect_low_trailer`: version 0 of BIG-IP 9.4 (35 bytes, with the flow ids)
/// and 10 (22 bytes), each with a 16-byte name; version 1 with a name of its own length.
fn legacy_low<'a>(record: &'a [u8], version: u8, parsed: &mut ParsedTrailer<'a>) -> bool {
    let name = match (version, record.len()) {
        (0, 35) => {
            parsed.flow_id = be32(record, 6).map(u64::from);
            parsed.peer_flow_id = be32(record, 10).map(u64::from);
            &record[19..35]
        }
        (0, 22) => &record[6..22],
        (1, length) if usize::from(record[6]) + 7 == length => &record[7..],
        _ => return false,
    };
    parsed.noise.low = true;
    parsed.ingress = Some(record[3] != 0);
    parsed.tmm = Some(record[5]);
    parsed.virtual_server = name_of(name);
    true
}

/// Wireshark's `dissect_med_trailer`: version 0 of BIG-IP 9.4 (8 bytes, no flow ids), 10 (21
/// bytes, 32-bit flow ids) and 11 (29 bytes); versions 1 to 3 end with an RST cause whose
/// length byte sits just before it.
fn legacy_medium<'a>(record: &'a [u8], version: u8, parsed: &mut ParsedTrailer<'a>) -> bool {
    let length = record.len();
    let cause_at = match version {
        0 => match length {
            8 => None,
            21 => {
                parsed.flow_id = be32(record, 3).map(u64::from);
                parsed.peer_flow_id = be32(record, 7).map(u64::from);
                None
            }
            29 => None,
            _ => return false,
        },
        1 => Some(30),
        2 => Some(31),
        _ => Some(35),
    };
    if let Some(cause_at) = cause_at {
        if length < cause_at || usize::from(record[cause_at - 1]) + cause_at != length {
            return false;
        }
        parsed.rst_cause = rst_cause(&record[cause_at..]);
    }
    if version > 0 || length == 29 {
        parsed.flow_id = be64(record, 3);
        parsed.peer_flow_id = be64(record, 11);
    }
    parsed.noise.medium = true;
    true
}

/// Wireshark's `dissect_high_trailer`: version 0, 42 bytes.
fn legacy_high(record: &[u8], version: u8, peer: &mut Option<F5Peer>) -> bool {
    if version != 0 || record.len() != 42 {
        return false;
    }
    *peer = peer_of(&record[3..]);
    true
}

/// An RST cause (medium noise): a byte with the cause format's version (7 bits, only 0 is
/// read) and a peer bit, 8 bytes of internal code and source line, then the text.
fn rst_cause(cause: &[u8]) -> Option<&[u8]> {
    let (&head, _) = cause.split_first()?;
    if head >> 1 != 0 {
        return None;
    }
    cause.get(9..).and_then(name_of)
}

/// The new format's records (Wireshark's `dissect_dpt_trailer`): only version 1 of the
/// format, and of its records only the noise provider's low (versions 2 to 4), medium
/// (version 4) and high (version 1) ones.
fn new_format<'a>(trailer: &'a [u8], parsed: &mut ParsedTrailer<'a>) {
    let Some(length) = be16(trailer, 4) else {
        return;
    };
    if be16(trailer, 6) != Some(1) {
        return;
    }
    let trailer = &trailer[..usize::from(length).min(trailer.len())];
    let mut at = NEW_HEADER_BYTES;
    let mut peer = None;
    // A length field shorter than the header itself leaves no record (found by fuzzing).
    while trailer.len().saturating_sub(at) >= NEW_RECORD_HEADER_BYTES {
        let header = &trailer[at..];
        let (Some(provider), Some(kind), Some(length), Some(version)) = (
            be16(header, 0),
            be16(header, 2),
            be16(header, 4),
            be16(header, 6),
        ) else {
            break;
        };
        let length = usize::from(length);
        if length < NEW_RECORD_HEADER_BYTES || length > header.len() {
            break;
        }
        let record = &header[..length];
        if provider == PROVIDER_NOISE {
            match (kind, version) {
                (1, 2..=4) => new_low(record, version, parsed),
                (2, 4) => new_medium(record, parsed),
                (3, 1) => {
                    parsed.noise.high = true;
                    peer = peer_of(&record[NEW_RECORD_HEADER_BYTES..]);
                }
                _ => {}
            }
        }
        at += length;
    }
    parsed.peer = peer.filter(|_| parsed.peer_flow_id.is_some_and(|id| id != 0));
}

/// Wireshark's `dissect_dpt_trailer_noise_low`: flags (version 2: the direction byte),
/// slot, TMM, then a name (versions 2 and 3) or a block of typed object names (version 4:
/// type 0 is the virtual server, 1 a port, 2 a trunk).
fn new_low<'a>(record: &'a [u8], version: u16, parsed: &mut ParsedTrailer<'a>) {
    let body = &record[NEW_RECORD_HEADER_BYTES..];
    let &[flags, _slot, tmm, block_len, ref rest @ ..] = body else {
        return;
    };
    parsed.noise.low = true;
    parsed.ingress = Some(if version == 2 {
        flags != 0
    } else {
        flags & 1 != 0
    });
    parsed.tmm = Some(tmm);
    let block_len = usize::from(block_len);
    if version < 4 {
        parsed.virtual_server = rest.get(..block_len).and_then(name_of);
        return;
    }
    // Wireshark reads the block's length as signed: a length of 128 or more is no block.
    if block_len > 127 {
        return;
    }
    let Some(mut block) = rest.get(..block_len) else {
        return;
    };
    while let [kind, length, ref names @ ..] = *block {
        let Some(name) = names.get(..usize::from(length)) else {
            break;
        };
        if kind == 0 && length > 0 {
            parsed.virtual_server = name_of(name);
        }
        block = &names[usize::from(length)..];
    }
}

/// Wireshark's `dissect_dpt_trailer_noise_med`: flow id, peer flow id, flags, flow type, HA
/// unit, reserved, priority, then the RST cause's length and the cause.
fn new_medium<'a>(record: &'a [u8], parsed: &mut ParsedTrailer<'a>) {
    const CAUSE_LEN_AT: usize = NEW_RECORD_HEADER_BYTES + 31;
    let Some(&cause_len) = record.get(CAUSE_LEN_AT) else {
        return;
    };
    parsed.noise.medium = true;
    parsed.flow_id = be64(record, NEW_RECORD_HEADER_BYTES);
    parsed.peer_flow_id = be64(record, NEW_RECORD_HEADER_BYTES + 8);
    // A cause longer than the record is a bad length: no cause.
    if let Some(cause) = record.get(CAUSE_LEN_AT + 1..CAUSE_LEN_AT + 1 + usize::from(cause_len)) {
        parsed.rst_cause = rst_cause(cause);
    }
}

/// The high-noise fields: IP protocol, VLAN, remote and local addresses (16 bytes each) and
/// ports.
fn peer_of(body: &[u8]) -> Option<F5Peer> {
    let fields = body.get(..39)?;
    let (remote_addr, remote_route_domain) = address(&fields[3..19]);
    let (local_addr, local_route_domain) = address(&fields[19..35]);
    Some(F5Peer {
        ip_protocol: fields[0],
        vlan: be16(fields, 1)?,
        remote_addr,
        remote_route_domain,
        local_addr,
        local_route_domain,
        remote_port: be16(fields, 35)?,
        local_port: be16(fields, 37)?,
    })
}

/// A trailer's 16-byte address, as Wireshark's `displayIPv6as4` reads it: IPv4-mapped
/// (`::ffff:a.b.c.d`), or F5's route-domain form (`2620:0:c10:f501:0:RD:a.b.c.d`), is IPv4.
fn address(bytes: &[u8]) -> (IpAddr, Option<u16>) {
    const MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    const ROUTE_DOMAIN: [u8; 10] = [0x26, 0x20, 0, 0, 0x0c, 0x10, 0xf5, 0x01, 0, 0];
    let mut octets = [0u8; 16];
    octets.copy_from_slice(bytes);
    let v4 = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if octets[..12] == MAPPED {
        (IpAddr::V4(v4), None)
    } else if octets[..10] == ROUTE_DOMAIN {
        (
            IpAddr::V4(v4),
            Some(u16::from_be_bytes([octets[10], octets[11]])),
        )
    } else {
        (IpAddr::V6(Ipv6Addr::from(octets)), None)
    }
}

/// A name as Wireshark shows it: up to the first NUL; `None` when empty.
fn name_of(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    (end > 0).then_some(&bytes[..end])
}

/// Text from the capture: ASCII as it is, any other byte shown as U+FFFD (Wireshark's
/// `ENC_ASCII`).
fn text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                '\u{fffd}'
            }
        })
        .collect()
}

/// The fileinfo pseudo-packet's start: an Ethernet header of zero addresses, type 0x05FF,
/// then `F5-Pseudo-pkt` and a NUL (Wireshark's `fileinfomagic1`).
const FILEINFO_MAGIC: [u8; 28] = *b"\0\0\0\0\0\0\0\0\0\0\0\0\x05\xffF5-Pseudo-pkt\0";

/// The fileinfo pseudo-packet's fields (Wireshark's `dissect_f5fileinfo`: NUL-terminated
/// strings with a `CMD: `, `VER: `, `HOST: `, `PLAT: ` or `PROD: ` prefix), or `None` when
/// the frame is not one. Wireshark looks for it in frame 1 only; it is taken here wherever it
/// is (a file merged with others may not start with it), since the magic cannot be traffic.
pub(crate) fn parse_fileinfo(data: &[u8]) -> Option<F5FileInfo> {
    let rest = data.strip_prefix(&FILEINFO_MAGIC)?;
    let mut info = F5FileInfo::default();
    for field in rest.split(|&b| b == 0) {
        let slot = if let Some(value) = field.strip_prefix(b"CMD: ") {
            Some((&mut info.command, value))
        } else if let Some(value) = field.strip_prefix(b"VER: ") {
            Some((&mut info.version, value))
        } else if let Some(value) = field.strip_prefix(b"HOST: ") {
            Some((&mut info.hostname, value))
        } else if let Some(value) = field.strip_prefix(b"PLAT: ") {
            Some((&mut info.platform, value))
        } else {
            field
                .strip_prefix(b"PROD: ")
                .map(|value| (&mut info.product, value))
        };
        if let Some((slot, value)) = slot {
            *slot = Some(text(value));
        }
    }
    Some(info)
}

/// Distinct names kept; later ones are counted in [`F5Summary::names_over_cap`]. A BIG-IP has
/// at most a few thousand virtual servers, and F5 documents a few hundred RST causes.
const MAX_NAMES: usize = 16_384;
/// RST causes kept per frame ([`F5Summary::rst_cause_frames`]); later ones are counted only.
const MAX_RST_CAUSE_FRAMES: usize = 1 << 20;

/// Per-name counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NameCounts {
    frames: u64,
    tcp_segments: u64,
    syn: u64,
    rst: u64,
}

/// What the F5 trailers and fileinfo packets of a run showed, gathered by
/// [`crate::Decoder`]: frames by format and noise level, by virtual server and by RST cause,
/// and the capture information. Bounded: at most 16,384 distinct names are kept.
#[derive(Clone, Debug, Default)]
pub struct F5Summary {
    names: Vec<String>,
    index: HashMap<Box<[u8]>, u32>,
    /// Counts as a virtual server, by name id.
    as_virtual_server: Vec<NameCounts>,
    /// Counts as an RST cause, by name id.
    as_rst_cause: Vec<u64>,
    /// Frames with a trailer.
    pub frames: u64,
    /// Frames with a legacy-format trailer.
    pub legacy_format: u64,
    /// Frames with a new-format trailer.
    pub new_format: u64,
    /// Frames whose trailer has low, medium and high noise.
    pub low_noise: u64,
    /// See [`F5Summary::low_noise`].
    pub medium_noise: u64,
    /// See [`F5Summary::low_noise`].
    pub high_noise: u64,
    /// Frames going into the BIG-IP.
    pub ingress: u64,
    /// Frames going out of the BIG-IP.
    pub egress: u64,
    /// Frames with low noise but no virtual server (traffic no virtual server handled).
    pub no_virtual_server: u64,
    /// Frames with a peer flow (high noise, peer flow id not 0).
    pub with_peer: u64,
    /// Names (virtual servers, RST causes) not kept because 16,384 distinct names were already kept.
    pub names_over_cap: u64,
    /// The RST causes of TCP segments, by frame, in the order decoded: for showing a cause
    /// beside a reset. At most 2^20 are kept; the rest are counted in
    /// [`F5Summary::rst_cause_frames_over_cap`].
    pub rst_cause_frames: Vec<(FrameRef, F5NameId)>,
    /// RST causes of frames beyond [`F5Summary::rst_cause_frames`]' cap.
    pub rst_cause_frames_over_cap: u64,
    /// The fileinfo pseudo-packets, one per BIG-IP capture.
    pub file_info: Vec<F5FileInfo>,
}

/// A virtual server with its frame counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct F5VirtualServer {
    /// The name as the trailer gives it (capture-derived text: escape it before showing).
    pub name: String,
    /// Frames with this name.
    pub frames: u64,
    /// Of those, TCP segments.
    pub tcp_segments: u64,
    /// TCP segments with SYN and without ACK.
    pub syn: u64,
    /// TCP segments with RST.
    pub rst: u64,
}

/// An RST cause with its frame count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct F5RstCause {
    /// The cause as the trailer gives it (capture-derived text: escape it before showing).
    pub cause: String,
    /// Frames with this cause.
    pub frames: u64,
}

impl F5Summary {
    /// True when no trailer and no fileinfo packet was seen.
    pub fn is_empty(&self) -> bool {
        self.frames == 0 && self.file_info.is_empty()
    }

    /// The text of an interned name.
    pub fn name(&self, id: F5NameId) -> &str {
        self.names.get(id.0 as usize).map_or("", String::as_str)
    }

    /// The virtual servers seen, most frames first (then by name).
    pub fn virtual_servers(&self) -> Vec<F5VirtualServer> {
        let mut list: Vec<F5VirtualServer> = self
            .as_virtual_server
            .iter()
            .enumerate()
            .filter(|(_, counts)| counts.frames > 0)
            .map(|(id, counts)| F5VirtualServer {
                name: self.names[id].clone(),
                frames: counts.frames,
                tcp_segments: counts.tcp_segments,
                syn: counts.syn,
                rst: counts.rst,
            })
            .collect();
        list.sort_by(|a, b| b.frames.cmp(&a.frames).then_with(|| a.name.cmp(&b.name)));
        list
    }

    /// The RST causes seen, most frames first (then by text).
    pub fn rst_causes(&self) -> Vec<F5RstCause> {
        let mut list: Vec<F5RstCause> = self
            .as_rst_cause
            .iter()
            .enumerate()
            .filter(|(_, frames)| **frames > 0)
            .map(|(id, &frames)| F5RstCause {
                cause: self.names[id].clone(),
                frames,
            })
            .collect();
        list.sort_by(|a, b| b.frames.cmp(&a.frames).then_with(|| a.cause.cmp(&b.cause)));
        list
    }

    fn intern(&mut self, bytes: &[u8]) -> Option<F5NameId> {
        if let Some(&id) = self.index.get(bytes) {
            return Some(F5NameId(id));
        }
        if self.names.len() >= MAX_NAMES {
            self.names_over_cap += 1;
            return None;
        }
        let id = self.names.len() as u32;
        self.names.push(text(bytes));
        self.index.insert(bytes.into(), id);
        self.as_virtual_server.push(NameCounts::default());
        self.as_rst_cause.push(0);
        Some(F5NameId(id))
    }

    /// Counts one frame's trailer and returns it with its names interned. `tcp_flags` are the
    /// frame's TCP segment's, when it is one.
    pub(crate) fn record(
        &mut self,
        parsed: &ParsedTrailer<'_>,
        frame: FrameRef,
        tcp_flags: Option<TcpFlags>,
    ) -> F5Trailer {
        let virtual_server = parsed.virtual_server.and_then(|name| self.intern(name));
        let rst_cause = parsed.rst_cause.and_then(|cause| self.intern(cause));
        self.frames += 1;
        if parsed.new_format {
            self.new_format += 1;
        } else {
            self.legacy_format += 1;
        }
        self.low_noise += u64::from(parsed.noise.low);
        self.medium_noise += u64::from(parsed.noise.medium);
        self.high_noise += u64::from(parsed.noise.high);
        match parsed.ingress {
            Some(true) => self.ingress += 1,
            Some(false) => self.egress += 1,
            None => {}
        }
        self.with_peer += u64::from(parsed.peer.is_some());
        if parsed.noise.low && parsed.virtual_server.is_none() {
            self.no_virtual_server += 1;
        }
        if let Some(id) = virtual_server {
            let counts = &mut self.as_virtual_server[id.0 as usize];
            counts.frames += 1;
            if let Some(flags) = tcp_flags {
                counts.tcp_segments += 1;
                counts.syn += u64::from(flags.is_syn_only());
                counts.rst += u64::from(flags.contains(TcpFlags::RST));
            }
        }
        if let Some(id) = rst_cause {
            self.as_rst_cause[id.0 as usize] += 1;
            if tcp_flags.is_some() {
                if self.rst_cause_frames.len() < MAX_RST_CAUSE_FRAMES {
                    self.rst_cause_frames.push((frame, id));
                } else {
                    self.rst_cause_frames_over_cap += 1;
                }
            }
        }
        F5Trailer {
            format: if parsed.new_format {
                F5TrailerFormat::New
            } else {
                F5TrailerFormat::Legacy
            },
            noise: parsed.noise,
            ingress: parsed.ingress,
            tmm: parsed.tmm,
            virtual_server,
            flow_id: parsed.flow_id,
            peer_flow_id: parsed.peer_flow_id,
            rst_cause,
            peer: parsed.peer,
        }
    }
}

/// Counts and lists, without the per-frame RST causes: `frames`, the formats and noise levels,
/// `ingress`/`egress`, `virtual_servers` (name, frames, tcp_segments, syn, rst), `rst_causes`
/// (cause, frames) and `file_info`.
impl Serialize for F5Summary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("F5Summary", 14)?;
        s.serialize_field("frames", &self.frames)?;
        s.serialize_field("legacy_format", &self.legacy_format)?;
        s.serialize_field("new_format", &self.new_format)?;
        s.serialize_field("low_noise", &self.low_noise)?;
        s.serialize_field("medium_noise", &self.medium_noise)?;
        s.serialize_field("high_noise", &self.high_noise)?;
        s.serialize_field("ingress", &self.ingress)?;
        s.serialize_field("egress", &self.egress)?;
        s.serialize_field("no_virtual_server", &self.no_virtual_server)?;
        s.serialize_field("with_peer", &self.with_peer)?;
        s.serialize_field("names_over_cap", &self.names_over_cap)?;
        s.serialize_field("virtual_servers", &self.virtual_servers())?;
        s.serialize_field("rst_causes", &self.rst_causes())?;
        s.serialize_field("file_info", &self.file_info)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_low_v1(ingress: u8, tmm: u8, name: &[u8]) -> Vec<u8> {
        let mut record = vec![
            1,
            (name.len() + 5) as u8,
            1,
            ingress,
            0,
            tmm,
            name.len() as u8,
        ];
        record.extend_from_slice(name);
        record
    }

    fn legacy_medium_v3(flow: u64, peer: u64, cause: &[u8]) -> Vec<u8> {
        let mut record = vec![2, 0, 3];
        record.extend_from_slice(&flow.to_be_bytes());
        record.extend_from_slice(&peer.to_be_bytes());
        record.extend_from_slice(&[0; 4 + 4 + 1 + 1 + 4 + 1]);
        let cause_len = if cause.is_empty() { 0 } else { cause.len() + 9 };
        record.push(cause_len as u8);
        if !cause.is_empty() {
            record.extend_from_slice(&[0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x03, 0xf4]);
            record.extend_from_slice(cause);
        }
        record[1] = (record.len() - 2) as u8;
        record
    }

    fn high_body(peer_remote: [u8; 4], remote_port: u16) -> Vec<u8> {
        let mut body = vec![6, 0x00, 0x0a];
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&peer_remote);
        body.extend_from_slice(&mapped);
        let mut routed = [0u8; 16];
        routed[..10].copy_from_slice(&[0x26, 0x20, 0, 0, 0x0c, 0x10, 0xf5, 0x01, 0, 0]);
        routed[10..12].copy_from_slice(&7u16.to_be_bytes());
        routed[12..].copy_from_slice(&[192, 0, 2, 9]);
        body.extend_from_slice(&routed);
        body.extend_from_slice(&remote_port.to_be_bytes());
        body.extend_from_slice(&80u16.to_be_bytes());
        body
    }

    #[test]
    fn legacy_chain_gives_direction_tmm_name_flows_cause_and_peer() {
        let mut trailer = legacy_low_v1(1, 3, b"/Common/vs_web");
        trailer.extend(legacy_medium_v3(0x1122, 0x3344, b"No flow found for ACK"));
        let mut high = vec![3, 40, 0];
        high.extend(high_body([198, 51, 100, 7], 40001));
        trailer.extend(high);
        // After Ethernet padding.
        let mut after_ip = vec![0; 6];
        after_ip.extend(&trailer);
        let parsed = parse_trailer(&after_ip).expect("a trailer");
        assert!(!parsed.new_format);
        assert_eq!(
            parsed.noise,
            F5Noise {
                low: true,
                medium: true,
                high: true
            }
        );
        assert_eq!(parsed.ingress, Some(true));
        assert_eq!(parsed.tmm, Some(3));
        assert_eq!(parsed.virtual_server, Some(&b"/Common/vs_web"[..]));
        assert_eq!(
            (parsed.flow_id, parsed.peer_flow_id),
            (Some(0x1122), Some(0x3344))
        );
        assert_eq!(parsed.rst_cause, Some(&b"No flow found for ACK"[..]));
        let peer = parsed.peer.expect("a peer");
        assert_eq!(peer.remote_addr, IpAddr::from([198, 51, 100, 7]));
        assert_eq!(peer.remote_route_domain, None);
        assert_eq!(peer.local_addr, IpAddr::from([192, 0, 2, 9]));
        assert_eq!(peer.local_route_domain, Some(7));
        assert_eq!(
            (peer.remote_port, peer.local_port, peer.vlan),
            (40001, 80, 10)
        );
    }

    #[test]
    fn high_noise_without_a_peer_flow_gives_no_peer() {
        let mut trailer = legacy_medium_v3(0x1122, 0, b"");
        let mut high = vec![3, 40, 0];
        high.extend(high_body([198, 51, 100, 7], 40001));
        trailer.extend(high);
        let parsed = parse_trailer(&trailer).expect("a trailer");
        assert!(parsed.noise.high);
        assert_eq!(parsed.peer, None);
        assert_eq!(parsed.rst_cause, None);
    }

    fn new_record(kind: u16, version: u16, body: &[u8]) -> Vec<u8> {
        let mut record = Vec::new();
        record.extend_from_slice(&PROVIDER_NOISE.to_be_bytes());
        record.extend_from_slice(&kind.to_be_bytes());
        record.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
        record.extend_from_slice(&version.to_be_bytes());
        record.extend_from_slice(body);
        record
    }

    fn new_trailer(records: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = records.concat();
        let mut trailer = NEW_FORMAT_MAGIC.to_be_bytes().to_vec();
        trailer.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
        trailer.extend_from_slice(&1u16.to_be_bytes());
        trailer.extend(body);
        trailer
    }

    #[test]
    fn new_format_after_an_fcs_is_found_and_tls_records_are_skipped() {
        let mut low = vec![0x00, 0, 5];
        low.push(11);
        low.extend_from_slice(b"/Common/api");
        let mut medium = 7u64.to_be_bytes().to_vec();
        medium.extend_from_slice(&9u64.to_be_bytes());
        medium.extend_from_slice(&[0; 15]);
        medium.push(0);
        let tls = {
            let mut record = new_record(0, 0, &[0xaa; 40]);
            record[..2].copy_from_slice(&4u16.to_be_bytes());
            record
        };
        let trailer = new_trailer(&[tls, new_record(1, 3, &low), new_record(2, 4, &medium)]);
        let mut after_ip = vec![0xde, 0xad, 0xbe, 0xef];
        after_ip.extend(&trailer);
        let parsed = parse_trailer(&after_ip).expect("a trailer");
        assert!(parsed.new_format);
        assert_eq!(parsed.ingress, Some(false));
        assert_eq!(parsed.tmm, Some(5));
        assert_eq!(parsed.virtual_server, Some(&b"/Common/api"[..]));
        assert_eq!((parsed.flow_id, parsed.peer_flow_id), (Some(7), Some(9)));
        assert!(!parsed.noise.high);
    }

    #[test]
    fn new_format_low_version_4_takes_the_virtual_server_among_object_names() {
        let mut low = vec![0x01, 0, 2];
        let block: Vec<u8> = [&[1u8, 4][..], b"1.1", b"\0", &[0, 6], b"/C/vs1"].concat();
        low.push(block.len() as u8);
        low.extend(block);
        let trailer = new_trailer(&[new_record(1, 4, &low)]);
        let parsed = parse_trailer(&trailer).expect("a trailer");
        assert_eq!(parsed.virtual_server, Some(&b"/C/vs1"[..]));
        assert_eq!(parsed.ingress, Some(true));
    }

    #[test]
    fn padding_random_bytes_and_bad_lengths_are_no_trailer() {
        assert!(parse_trailer(&[0; 18]).is_none());
        assert!(parse_trailer(&[0x45, 0x12, 0x99, 0, 0, 0, 0, 0]).is_none());
        // A legacy record longer than the bytes.
        assert!(parse_trailer(&[1, 30, 1, 1, 0, 0, 0, 0]).is_none());
        // The new magic with a length beyond the bytes.
        let mut trailer = new_trailer(&[new_record(1, 3, &[1, 0, 0, 0])]);
        trailer[5] = 200;
        assert!(parse_trailer(&trailer).is_none());
        // A low record of an unknown version only.
        assert!(parse_trailer(&new_trailer(&[new_record(1, 9, &[1, 0, 0, 0])])).is_none());
        // Regression (fuzzing): the new magic with a length shorter than its own header.
        let mut trailer = new_trailer(&[new_record(1, 3, &[1, 0, 0, 0])]);
        trailer[4] = 0;
        trailer[5] = 2;
        assert!(parse_trailer(&trailer).is_none());
    }

    #[test]
    fn fileinfo_fields_are_read_and_other_frames_are_not_fileinfo() {
        let mut data = FILEINFO_MAGIC.to_vec();
        for field in [
            &b"CMD: tcpdump -ni 0.0:nnn -w /var/tmp/x.pcap"[..],
            b"VER: BIG-IP 15.1.8",
            b"HOST: bigip1.example.com",
            b"PLAT: Z100",
            b"PROD: BIG-IP",
        ] {
            data.extend_from_slice(field);
            data.push(0);
        }
        let info = parse_fileinfo(&data).expect("fileinfo");
        assert_eq!(
            info.command.as_deref(),
            Some("tcpdump -ni 0.0:nnn -w /var/tmp/x.pcap")
        );
        assert_eq!(info.version.as_deref(), Some("BIG-IP 15.1.8"));
        assert_eq!(info.hostname.as_deref(), Some("bigip1.example.com"));
        assert_eq!(info.platform.as_deref(), Some("Z100"));
        assert_eq!(info.product.as_deref(), Some("BIG-IP"));
        data[14] = b'G';
        assert!(parse_fileinfo(&data).is_none());
    }
}
