//! Frame → [`TcpSegment`], or the reason it is not one.

use std::net::IpAddr;

use etherparse::{
    IpNumber, Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice,
};
use twsleuth_reader::{Frame, LinkType};

use crate::accounting::FrameClass;
use crate::segment::{FrameRef, TcpFlags, TcpOptions, TcpSegment, TcpTimestamps};

/// Why a frame is not a TCP segment: its accounting class and a short reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotTcp {
    /// The accounting counter the frame ends in (never [`FrameClass::Tcp`]).
    pub class: FrameClass,
    /// What the decoder saw, for the malformed/truncated breakdown.
    pub reason: &'static str,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ outer tag, still emitted by some switches.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// BSD address families for IPv6 differ by OS: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
const BSD_AF_INET: u32 = 2;
const BSD_AF_INET6: [u32; 3] = [24, 28, 30];
const TCP_MIN_HEADER_BYTES: usize = 20;

/// Which IP version the link layer announced.
#[derive(Clone, Copy)]
enum Network {
    Ipv4,
    Ipv6,
}

/// Decodes one frame into a TCP segment record.
///
/// Never panics: every length is checked before use. A frame cut by the snaplen decodes as far
/// as its headers go; it counts as truncated only when a header needed to reach or read TCP is
/// itself cut (a frame whose bytes run out without a snaplen cut is malformed instead).
pub fn decode(frame: &Frame<'_>) -> Result<TcpSegment, NotTcp> {
    let (network, ip) = link_payload(frame)?;
    match network {
        Network::Ipv4 => decode_ipv4(frame, ip),
        Network::Ipv6 => decode_ipv6(frame, ip),
    }
}

/// The frame is shorter than a header needs: truncated when the snaplen cut it, else malformed.
fn cut(frame: &Frame<'_>, reason: &'static str) -> NotTcp {
    let class = if frame.data.len() < frame.orig_len as usize {
        FrameClass::Truncated
    } else {
        FrameClass::Malformed
    };
    NotTcp { class, reason }
}

fn malformed(reason: &'static str) -> NotTcp {
    NotTcp {
        class: FrameClass::Malformed,
        reason,
    }
}

fn not_tcp(class: FrameClass, reason: &'static str) -> NotTcp {
    NotTcp { class, reason }
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], big_endian: bool) -> Option<u32> {
    let word: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(word)
    } else {
        u32::from_le_bytes(word)
    })
}

/// Strips the link-layer header and says which IP version follows.
fn link_payload<'a>(frame: &Frame<'a>) -> Result<(Network, &'a [u8]), NotTcp> {
    let data = frame.data;
    match frame.link_type {
        LinkType::ETHERNET => {
            let ethertype = be16(data, 12).ok_or_else(|| cut(frame, "Ethernet header cut"))?;
            ethertype_payload(frame, ethertype, &data[14..])
        }
        // Linux cooked v1: protocol type in the last 2 of 16 header bytes.
        LinkType::LINUX_SLL => {
            let protocol = be16(data, 14)
                .filter(|_| data.len() >= 16)
                .ok_or_else(|| cut(frame, "LINUX_SLL header cut"))?;
            ethertype_payload(frame, protocol, &data[16..])
        }
        // Linux cooked v2: protocol type in the first 2 of 20 header bytes.
        LinkType::LINUX_SLL2 => {
            let protocol = be16(data, 0)
                .filter(|_| data.len() >= 20)
                .ok_or_else(|| cut(frame, "LINUX_SLL2 header cut"))?;
            ethertype_payload(frame, protocol, &data[20..])
        }
        LinkType::NULL | LinkType::LOOP => {
            // NULL stores the family in the capturing host's byte order, which the file does
            // not record; a family is small, so a value with high bits set is byte-swapped
            // (libpcap's `swap_null_header` reasoning).
            let big_endian = frame.link_type == LinkType::LOOP;
            let mut family =
                u32_at(data, big_endian).ok_or_else(|| cut(frame, "loopback header cut"))?;
            if !big_endian && family & 0xffff_0000 != 0 {
                family = family.swap_bytes();
            }
            let network = if family == BSD_AF_INET {
                Network::Ipv4
            } else if BSD_AF_INET6.contains(&family) {
                Network::Ipv6
            } else {
                return Err(not_tcp(FrameClass::NonIp, "loopback family is not IP"));
            };
            Ok((network, &data[4..]))
        }
        LinkType::RAW => match data.first().map(|b| b >> 4) {
            Some(4) => Ok((Network::Ipv4, data)),
            Some(6) => Ok((Network::Ipv6, data)),
            Some(_) => Err(malformed("RAW frame is neither IPv4 nor IPv6")),
            None => Err(cut(frame, "empty RAW frame")),
        },
        LinkType::IPV4 => Ok((Network::Ipv4, data)),
        LinkType::IPV6 => Ok((Network::Ipv6, data)),
        _ => Err(not_tcp(FrameClass::NonIp, "link type not decoded")),
    }
}

/// Follows 802.1Q / 802.1ad tags (any depth) to the IP ethertype.
fn ethertype_payload<'a>(
    frame: &Frame<'a>,
    mut ethertype: u16,
    mut rest: &'a [u8],
) -> Result<(Network, &'a [u8]), NotTcp> {
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => return Ok((Network::Ipv4, rest)),
            ETHERTYPE_IPV6 => return Ok((Network::Ipv6, rest)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                ethertype = be16(rest, 2).ok_or_else(|| cut(frame, "VLAN tag cut"))?;
                rest = &rest[4..];
            }
            _ => return Err(not_tcp(FrameClass::NonIp, "ethertype is not IP")),
        }
    }
}

fn decode_ipv4(frame: &Frame<'_>, ip: &[u8]) -> Result<TcpSegment, NotTcp> {
    let header = Ipv4HeaderSlice::from_slice(ip).map_err(|e| match e {
        etherparse::err::ipv4::HeaderSliceError::Len(_) => cut(frame, "IPv4 header cut"),
        etherparse::err::ipv4::HeaderSliceError::Content(_) => malformed("bad IPv4 header"),
    })?;
    let header_len = header.slice().len();
    // A total length of 0 is what TSO hands to the capture before the NIC fills it in
    // (Wireshark: "assuming TCP segmentation offload"): the frame's length stands in for it.
    let total_len = match usize::from(header.total_len()) {
        0 => ip.len(),
        len => len,
    };
    if total_len < header_len {
        return Err(malformed("IPv4 total length shorter than its header"));
    }
    if total_len > ip.len() && frame.data.len() >= frame.orig_len as usize {
        return Err(malformed("IPv4 total length exceeds the frame"));
    }
    // Only the first fragment carries the TCP header; later ones cannot be read as TCP.
    if header.fragments_offset().value() > 0 {
        return Err(not_tcp(FrameClass::Fragment, "IPv4 fragment"));
    }
    if header.protocol() != IpNumber::TCP {
        return Err(not_tcp(FrameClass::OtherIp, "IPv4 protocol is not TCP"));
    }
    let transport = &ip[header_len..ip.len().min(total_len)];
    decode_tcp(
        frame,
        (
            IpAddr::V4(header.source_addr()),
            IpAddr::V4(header.destination_addr()),
        ),
        header.identification(),
        transport,
        total_len - header_len,
    )
}

fn decode_ipv6(frame: &Frame<'_>, ip: &[u8]) -> Result<TcpSegment, NotTcp> {
    let header = Ipv6HeaderSlice::from_slice(ip).map_err(|e| match e {
        etherparse::err::ipv6::HeaderSliceError::Len(_) => cut(frame, "IPv6 header cut"),
        etherparse::err::ipv6::HeaderSliceError::Content(_) => malformed("bad IPv6 header"),
    })?;
    let header_len = header.slice().len();
    // Payload length 0: a jumbogram or TSO; the frame's length stands in for it.
    let payload_len = match usize::from(header.payload_length()) {
        0 => ip.len() - header_len,
        len => len,
    };
    if header_len + payload_len > ip.len() && frame.data.len() >= frame.orig_len as usize {
        return Err(malformed("IPv6 payload length exceeds the frame"));
    }
    let payload = &ip[header_len..ip.len().min(header_len + payload_len)];
    let (extensions, protocol, transport) =
        Ipv6ExtensionsSlice::from_slice(header.next_header(), payload).map_err(|e| match e {
            etherparse::err::ipv6_exts::HeaderSliceError::Len(_) => {
                cut(frame, "IPv6 extension header cut")
            }
            etherparse::err::ipv6_exts::HeaderSliceError::Content(_) => {
                malformed("bad IPv6 extension header")
            }
        })?;
    let extensions_len = payload.len() - transport.len();
    let later_fragment = extensions.into_iter().any(|ext| {
        matches!(ext, Ipv6ExtensionSlice::Fragment(fragment) if fragment.fragment_offset().value() > 0)
    });
    if later_fragment {
        return Err(not_tcp(FrameClass::Fragment, "IPv6 fragment"));
    }
    if protocol != IpNumber::TCP {
        return Err(not_tcp(FrameClass::OtherIp, "IPv6 next header is not TCP"));
    }
    decode_tcp(
        frame,
        (
            IpAddr::V6(header.source_addr()),
            IpAddr::V6(header.destination_addr()),
        ),
        0,
        transport,
        payload_len.saturating_sub(extensions_len),
    )
}

/// Reads the TCP header from `transport` (the captured bytes within the IP packet), with
/// `declared_len` the TCP length the IP header gives. The 20-byte base header (RFC 9293
/// section 3.1) is required; options cut by the snaplen are read as far as they go, as
/// Wireshark does.
fn decode_tcp(
    frame: &Frame<'_>,
    (src, dst): (IpAddr, IpAddr),
    ip_id: u16,
    transport: &[u8],
    declared_len: usize,
) -> Result<TcpSegment, NotTcp> {
    let Some(base) = transport.get(..TCP_MIN_HEADER_BYTES) else {
        return Err(cut(frame, "TCP header cut"));
    };
    let be16 = |at: usize| u16::from_be_bytes([base[at], base[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([base[at], base[at + 1], base[at + 2], base[at + 3]]);
    let header_len = usize::from(base[12] >> 4) * 4;
    if header_len < TCP_MIN_HEADER_BYTES {
        return Err(malformed("TCP data offset below 5"));
    }
    if declared_len < header_len {
        return Err(malformed("TCP header longer than the IP payload"));
    }
    let options = &transport[TCP_MIN_HEADER_BYTES..transport.len().min(header_len)];
    Ok(TcpSegment {
        ts_ns: frame.ts_ns,
        frame: FrameRef {
            file_index: frame.file_index,
            number: frame.number,
        },
        src,
        dst,
        src_port: be16(0),
        dst_port: be16(2),
        seq: be32(4),
        ack: be32(8),
        flags: TcpFlags(base[13]),
        window: be16(14),
        ip_id,
        payload_len: u32::try_from(declared_len - header_len).unwrap_or(u32::MAX),
        options: tcp_options(options),
    })
}

/// The options twsleuth keeps (RFC 9293 section 3.2 layout: kind, length, value). A malformed
/// option ends the walk and the segment is kept, as Linux `tcp_parse_options` does. Written by
/// hand rather than with etherparse's iterator: this runs for every segment, and most carry
/// only NOP, NOP, timestamps.
fn tcp_options(options: &[u8]) -> TcpOptions {
    // Most segments of a connection that uses timestamps carry exactly NOP, NOP, timestamps:
    // read them at once, as Linux does (`tcp_parse_aligned_timestamp`).
    if let [1, 1, 8, 10, value @ ..] = options {
        if let Ok(&[v0, v1, v2, v3, e0, e1, e2, e3]) = <&[u8; 8]>::try_from(value) {
            return TcpOptions {
                timestamps: Some(TcpTimestamps {
                    value: u32::from_be_bytes([v0, v1, v2, v3]),
                    echo_reply: u32::from_be_bytes([e0, e1, e2, e3]),
                }),
                ..TcpOptions::default()
            };
        }
    }
    walk_tcp_options(options)
}

/// Every option, as [`tcp_options`] reads them when they are not the usual three.
fn walk_tcp_options(options: &[u8]) -> TcpOptions {
    const END: u8 = 0;
    const NOP: u8 = 1;
    const MSS: u8 = 2;
    const WINDOW_SCALE: u8 = 3;
    const SACK_PERMITTED: u8 = 4;
    const TIMESTAMPS: u8 = 8;
    let mut parsed = TcpOptions::default();
    let mut rest = options;
    while let Some((&kind, after_kind)) = rest.split_first() {
        match kind {
            END => break,
            NOP => {
                rest = after_kind;
                continue;
            }
            _ => {}
        }
        let Some(&len) = after_kind.first() else {
            break;
        };
        let len = usize::from(len);
        let Some(value) = rest.get(2..len).filter(|_| len >= 2) else {
            break;
        };
        match (kind, value.len()) {
            (MSS, 2) => parsed.mss = Some(u16::from_be_bytes([value[0], value[1]])),
            (WINDOW_SCALE, 1) => parsed.window_scale = Some(value[0]),
            (SACK_PERMITTED, 0) => parsed.sack_permitted = true,
            (TIMESTAMPS, 8) => {
                parsed.timestamps = Some(TcpTimestamps {
                    value: u32::from_be_bytes([value[0], value[1], value[2], value[3]]),
                    echo_reply: u32::from_be_bytes([value[4], value[5], value[6], value[7]]),
                })
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_timestamps_read_at_once_as_the_walk_reads_them() {
        let mut state = 99u64;
        for _ in 0..1000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let mut options = vec![1, 1, 8, 10];
            options.extend_from_slice(&state.to_be_bytes());
            assert_eq!(tcp_options(&options), walk_tcp_options(&options));
            assert!(tcp_options(&options).timestamps.is_some());
            // With SACK blocks after them, or cut short, the walk reads them.
            options.extend_from_slice(&[1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
            assert_eq!(tcp_options(&options), walk_tcp_options(&options));
            assert_eq!(tcp_options(&options[..11]).timestamps, None);
        }
    }

    #[test]
    fn options_parse_stops_at_malformed_lengths() {
        // NOP NOP TS(1, 2) then an option claiming length 1 (impossible).
        let options = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 3, 1, 7];
        let parsed = tcp_options(&options);
        assert_eq!(
            parsed.timestamps,
            Some(TcpTimestamps {
                value: 1,
                echo_reply: 2
            })
        );
        assert_eq!(parsed.window_scale, None);
        assert_eq!(tcp_options(&[2, 4, 5]), TcpOptions::default());
        assert_eq!(
            tcp_options(&[3, 3, 7, 0, 2, 4, 5, 180]).window_scale,
            Some(7)
        );
        assert_eq!(tcp_options(&[3, 3, 7, 0, 2, 4, 5, 180]).mss, None);
    }
}
