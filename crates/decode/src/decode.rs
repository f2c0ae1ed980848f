//! Frame → [`TcpSegment`], or the reason it is not one: link layers, tags, tunnels, IP, TCP.
//!
//! A frame is walked header by header ([`Layer`]); each step checks the bytes it reads and
//! names the next header, or ends the walk with a segment or a [`NotTcp`]. Every step eats
//! bytes, so a walk ends within the frame's length, and the nested headers followed are
//! bounded besides ([`MAX_NESTED_HEADERS`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use twsleuth_reader::{Frame, LinkType};

use crate::accounting::FrameClass;
use crate::defrag::{DatagramKey, Defragmenter, Fragment, Reassembled};
use crate::segment::{
    FrameRef, TcpFlags, TcpOptions, TcpSegment, TcpTimestamps, TunnelKind, Vantage,
};

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
const ETHERTYPE_MPLS_UNICAST: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// Transparent Ethernet Bridging: a whole Ethernet frame (GRE in Linux gretap and NVGRE,
/// Geneve's protocol type for Ethernet).
const ETHERTYPE_TEB: u16 = 0x6558;
/// ERSPAN types I and II in GRE.
const ETHERTYPE_ERSPAN_1_2: u16 = 0x88be;
/// ERSPAN type III in GRE.
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;
/// Type field values up to 1500 are an IEEE 802.3 length: an 802.2 LLC header follows.
const ETHERNET_MAX_LENGTH: u16 = 1500;

const IP_PROTOCOL_IPV4: u8 = 4;
const IP_PROTOCOL_TCP: u8 = 6;
const IP_PROTOCOL_UDP: u8 = 17;
const IP_PROTOCOL_IPV6: u8 = 41;
const IP_PROTOCOL_GRE: u8 = 47;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTHENTICATION: u8 = 51;
const IPV6_DESTINATION_OPTIONS: u8 = 60;

/// IANA-assigned destination ports of the UDP tunnels (RFC 7348, RFC 8926, TS 29.281).
const UDP_PORT_VXLAN: u16 = 4789;
const UDP_PORT_GENEVE: u16 = 6081;
const UDP_PORT_GTP_U: u16 = 2152;

/// BSD address families for IPv6 differ by OS: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
const BSD_AF_INET: u32 = 2;
const BSD_AF_INET6: [u32; 3] = [24, 28, 30];
const TCP_MIN_HEADER_BYTES: usize = 20;
/// No IP datagram's payload reaches past this (RFC 791 total length, RFC 8200 payload length).
const MAX_DATAGRAM_BYTES: usize = 65535;

/// VLAN tags, MPLS labels and tunnel headers followed in one frame at most. Real captures nest
/// a handful (three tags inside VXLAN inside a two-label MPLS path is 7); a frame nested
/// deeper counts as malformed (and in [`crate::Accounting::nesting_too_deep`]).
pub const MAX_NESTED_HEADERS: u8 = 16;

/// Encapsulations a walk went through, one bit each ([`crate::Encapsulations`]).
pub(crate) mod seen {
    pub const VLAN: u16 = 1 << 0;
    pub const MPLS: u16 = 1 << 1;
    pub const PPPOE: u16 = 1 << 2;
    pub const GRE: u16 = 1 << 3;
    pub const ERSPAN: u16 = 1 << 4;
    pub const VXLAN: u16 = 1 << 5;
    pub const GENEVE: u16 = 1 << 6;
    pub const GTP_U: u16 = 1 << 7;
    pub const IP_IN_IP: u16 = 1 << 8;
}

/// Other things a walk noticed, one bit each.
pub(crate) mod notes {
    /// A tunnel whose payload is not one twsleuth reads.
    pub const UNKNOWN_ENCAPSULATION: u8 = 1 << 0;
    /// More nested headers than [`super::MAX_NESTED_HEADERS`].
    pub const TOO_DEEP: u8 = 1 << 1;
    /// An IP packet longer than the bytes the frame holds of it.
    pub const IP_BEYOND_CAPTURE: u8 = 1 << 2;
    /// A link type twsleuth does not decode.
    pub const UNDECODED_LINK_TYPE: u8 = 1 << 3;
}

/// Decodes one frame into a TCP segment record, without state: IP fragments are not put
/// together (see [`crate::Decoder`], which the capture pipeline uses).
///
/// Never panics: every length is checked before use. A frame cut by the snaplen decodes as far
/// as its headers go; it counts as truncated only when a header needed to reach or read TCP is
/// itself cut (a frame whose bytes run out without a snaplen cut is malformed instead). The
/// TCP header of a first IPv4 or IPv6 fragment is read when the fragment holds all of it, with
/// the payload length of that fragment (the datagram's is not known yet); a first fragment
/// whose TCP header continues in the next one, and every later fragment, count as fragments.
pub fn decode(frame: &Frame<'_>) -> Result<TcpSegment, NotTcp> {
    // Each path returns the callee's result as it is, so the segment is written once, in the
    // caller's place (a segment moved from one value to another is read back before its bytes
    // are stored: a stall that cost the common case half again its time).
    match common_case(frame, &mut Trace::default()) {
        Some(found) => found.segment(frame),
        None => Walk::new(frame, None).run(),
    }
}

/// What a frame went through and what was noticed on the way ([`seen`] and [`notes`] bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trace {
    pub seen: u16,
    pub notes: u8,
}

/// The common cases read straight through: an Ethernet frame (with at most two VLAN tags), a
/// Linux cooked frame or a raw IP frame, holding an unfragmented IPv4 or IPv6 packet (no
/// extension header) whose TCP header is whole (the rest may be cut by the snaplen). `None`
/// for anything else or anything odd, which [`Walk`] then decodes from the start. For the
/// frames this accepts, the walk gives the same segment and the same [`Trace`] (the test
/// `common_cases_decode_as_the_walk_does` checks both). Going through the walk's layers costs
/// these frames half again their time or more, mostly in moving state between the layers.
#[inline(always)]
pub(crate) fn common_case<'a>(frame: &Frame<'a>, trace: &mut Trace) -> Option<FoundTcp<'a>> {
    let (at, vantage, tagged) = common_tcp_header(frame)?;
    let base = at.transport.get(..TCP_MIN_HEADER_BYTES)?;
    let header_len = usize::from(base[12] >> 4) * 4;
    if header_len < TCP_MIN_HEADER_BYTES || at.declared_len < header_len {
        return None;
    }
    if at.transport.len() < at.declared_len {
        trace.notes |= notes::IP_BEYOND_CAPTURE;
    }
    if tagged {
        trace.seen |= seen::VLAN;
    }
    Some(FoundTcp {
        at,
        header_len,
        vantage,
    })
}

/// A TCP header whose base is at hand and whose length fits the IP payload.
pub(crate) struct FoundTcp<'a> {
    at: TcpAt<'a>,
    header_len: usize,
    vantage: Vantage,
}

impl FoundTcp<'_> {
    /// The bytes of a common case's frame after its IP packet (an Ethernet trailer, padding,
    /// an FCS): none when the packet is cut. `data` must be the frame the TCP header was found
    /// in by [`common_case`] (its bytes hold the header's; a reassembled header's do not).
    #[inline(always)]
    pub fn bytes_after_ip<'f>(&self, data: &'f [u8]) -> &'f [u8] {
        if self.at.transport.len() < self.at.declared_len {
            return &[];
        }
        // The IP payload ends where the transport slice ends: its offset in the frame is an
        // address difference (no pointer is dereferenced).
        let end = (self.at.transport.as_ptr() as usize + self.at.transport.len())
            .checked_sub(data.as_ptr() as usize);
        end.and_then(|end| data.get(end..)).unwrap_or(&[])
    }

    /// The TCP header's flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.at.transport[13])
    }

    /// The segment record, built in the place the result is returned to.
    #[inline(always)]
    pub fn segment(&self, frame: &Frame<'_>) -> Result<TcpSegment, NotTcp> {
        let at = &self.at;
        let base = &at.transport[..TCP_MIN_HEADER_BYTES];
        let be16 = |i: usize| u16::from_be_bytes([base[i], base[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([base[i], base[i + 1], base[i + 2], base[i + 3]]);
        let options = &at.transport[TCP_MIN_HEADER_BYTES..at.transport.len().min(self.header_len)];
        let (src, dst) = at.addresses.ip_addrs();
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
            ip_id: at.ip_id,
            payload_len: u32::try_from(at.declared_len - self.header_len).unwrap_or(u32::MAX),
            options: tcp_options(options),
            vantage: self.vantage,
        })
    }
}

/// The TCP header of a common case, its vantage and whether it had VLAN tags.
#[inline(always)]
fn common_tcp_header<'a>(frame: &Frame<'a>) -> Option<(TcpAt<'a>, Vantage, bool)> {
    let data = frame.data;
    let mut vantage = Vantage::default();
    let mut tagged = false;
    let (ethertype, ip) = match frame.link_type {
        LinkType::ETHERNET => {
            let mut ethertype = be16(data, 12)?;
            let mut at = 14;
            for tag in 0..2 {
                if !matches!(
                    ethertype,
                    ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
                ) {
                    break;
                }
                let vlan_id = be16(data, at)? & 0x0fff;
                tagged = true;
                if tag == 0 {
                    vantage.outer_vlan = vlan_id;
                } else {
                    vantage.inner_vlan = vlan_id;
                }
                ethertype = be16(data, at + 2)?;
                at += 4;
            }
            (ethertype, data.get(at..)?)
        }
        LinkType::LINUX_SLL => (be16(data, 14)?, data.get(16..)?),
        LinkType::LINUX_SLL2 => (be16(data, 0)?, data.get(20..)?),
        LinkType::IPV4 => (ETHERTYPE_IPV4, data),
        LinkType::IPV6 => (ETHERTYPE_IPV6, data),
        LinkType::RAW => match data.first()? >> 4 {
            4 => (ETHERTYPE_IPV4, data),
            6 => (ETHERTYPE_IPV6, data),
            _ => return None,
        },
        _ => return None,
    };
    let tcp = match ethertype {
        ETHERTYPE_IPV4 => {
            let base = ip.get(..20)?;
            let header_len = usize::from(base[0] & 0x0f) * 4;
            let total_len = match usize::from(u16::from_be_bytes([base[2], base[3]])) {
                0 => ip.len(),
                len => len,
            };
            let flags_and_offset = u16::from_be_bytes([base[6], base[7]]);
            // Version 4, a valid header length, TCP, not a fragment (MF and offset 0; DF may
            // be set).
            if base[0] >> 4 != 4
                || header_len < 20
                || total_len < header_len
                || ip.len() < header_len
                || base[9] != IP_PROTOCOL_TCP
                || flags_and_offset & 0x3fff != 0
            {
                return None;
            }
            let addresses = Addresses::V4(
                u32::from_be_bytes([base[12], base[13], base[14], base[15]]),
                u32::from_be_bytes([base[16], base[17], base[18], base[19]]),
            );
            TcpAt {
                addresses,
                ip_id: u16::from_be_bytes([base[4], base[5]]),
                transport: &ip[header_len..ip.len().min(total_len)],
                declared_len: total_len - header_len,
                in_fragment: false,
            }
        }
        ETHERTYPE_IPV6 => {
            let fixed = ip.get(..40)?;
            let payload_len = match usize::from(u16::from_be_bytes([fixed[4], fixed[5]])) {
                0 => ip.len() - 40,
                len => len,
            };
            if fixed[0] >> 4 != 6 || fixed[6] != IP_PROTOCOL_TCP {
                return None;
            }
            let address = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&fixed[at..at + 16]);
                u128::from_be_bytes(octets)
            };
            TcpAt {
                addresses: Addresses::V6(address(8), address(24)),
                ip_id: 0,
                transport: &ip[40..ip.len().min(40 + payload_len)],
                declared_len: payload_len,
                in_fragment: false,
            }
        }
        _ => return None,
    };
    Some((tcp, vantage, tagged))
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

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], big_endian: bool) -> Option<u32> {
    let word: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(word)
    } else {
        u32::from_le_bytes(word)
    })
}

/// PPP's address and control fields (0xFF 0x03, RFC 1662 section 3.1), absent when they were
/// compressed away (ACFC, RFC 1661 section 6.6), as Wireshark reads LINKTYPE_PPP.
fn without_hdlc_address_and_control(data: &[u8]) -> &[u8] {
    match data {
        [0xff, 0x03, rest @ ..] => rest,
        _ => data,
    }
}

/// The next header to read.
enum Layer<'a> {
    /// An Ethernet header (without FCS) and what follows it.
    Ethernet(&'a [u8]),
    /// An ethertype and the bytes after the field that held it.
    EtherType(u16, &'a [u8]),
    /// An IEEE 802.2 LLC header.
    Llc(&'a [u8]),
    /// A PPP protocol field.
    Ppp(&'a [u8]),
    /// An MPLS label stack.
    Mpls(&'a [u8]),
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
}

/// What an IP header led to.
enum Step<'a> {
    /// A TCP header, described in [`Walk::tcp`].
    Tcp,
    Inner(Layer<'a>),
}

/// An IP packet's addresses, as numbers: written once by the IP layer and read once when the
/// segment is built.
#[derive(Clone, Copy)]
enum Addresses {
    V4(u32, u32),
    V6(u128, u128),
}

impl Addresses {
    fn ip_addrs(self) -> (IpAddr, IpAddr) {
        match self {
            Addresses::V4(src, dst) => (
                IpAddr::V4(Ipv4Addr::from(src)),
                IpAddr::V4(Ipv4Addr::from(dst)),
            ),
            Addresses::V6(src, dst) => (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
            ),
        }
    }
}

/// Where the TCP header is and what the IP layer says of it. Kept in the walk rather than
/// handed up through the layers: the segment is then built once, in the place it is returned
/// to (copying a freshly written record through each layer cost as much as decoding it).
#[derive(Clone, Copy)]
struct TcpAt<'a> {
    addresses: Addresses,
    ip_id: u16,
    /// The IP payload's bytes at hand (unused when the header was reassembled).
    transport: &'a [u8],
    /// The TCP length the IP header gives.
    declared_len: usize,
    /// The bytes are a first fragment's: a header that does not fit continues in the next.
    in_fragment: bool,
}

/// One frame's walk from its link layer to TCP, and what it saw on the way.
pub(crate) struct Walk<'f, 'a, 'd> {
    frame: &'f Frame<'a>,
    defragmenter: Option<&'d mut Defragmenter>,
    vantage: Vantage,
    /// [`seen`] bits.
    pub seen: u16,
    /// [`notes`] bits.
    pub notes: u8,
    nested: u8,
    /// The TCP header, once an IP layer found it.
    tcp: TcpAt<'a>,
    /// A TCP header put together from fragments, when that is where it came from.
    reassembled: Option<Reassembled>,
    /// An IP header was passed: what is not TCP from here on is "other IP".
    inside_ip: bool,
    /// The bytes are a first fragment's: inner lengths beyond them are expected.
    in_first_fragment: bool,
    /// The frame's bytes after its outermost IP packet, when that packet is whole.
    pub after_ip: &'a [u8],
}

impl<'f, 'a, 'd> Walk<'f, 'a, 'd> {
    pub fn new(frame: &'f Frame<'a>, defragmenter: Option<&'d mut Defragmenter>) -> Self {
        Walk {
            frame,
            defragmenter,
            vantage: Vantage::default(),
            seen: 0,
            notes: 0,
            nested: 0,
            tcp: TcpAt {
                addresses: Addresses::V4(0, 0),
                ip_id: 0,
                transport: &[],
                declared_len: 0,
                in_fragment: false,
            },
            reassembled: None,
            inside_ip: false,
            in_first_fragment: false,
            after_ip: &[],
        }
    }

    #[inline(always)]
    pub fn run(&mut self) -> Result<TcpSegment, NotTcp> {
        let mut layer = self.link_layer()?;
        loop {
            layer = match layer {
                Layer::Ethernet(bytes) => self.ethernet(bytes)?,
                Layer::EtherType(ethertype, rest) => self.ethertype(ethertype, rest)?,
                Layer::Llc(bytes) => self.llc(bytes)?,
                Layer::Ppp(bytes) => self.ppp(bytes)?,
                Layer::Mpls(bytes) => self.mpls(bytes)?,
                Layer::Ipv4(ip) => match self.ipv4(ip)? {
                    Step::Tcp => return self.segment(),
                    Step::Inner(inner) => inner,
                },
                Layer::Ipv6(ip) => match self.ipv6(ip)? {
                    Step::Tcp => return self.segment(),
                    Step::Inner(inner) => inner,
                },
            };
        }
    }

    /// The frame is shorter than a header needs: truncated when the snaplen cut it, else
    /// malformed.
    fn cut(&self, reason: &'static str) -> NotTcp {
        let class = if self.frame.data.len() < self.frame.orig_len as usize {
            FrameClass::Truncated
        } else {
            FrameClass::Malformed
        };
        NotTcp { class, reason }
    }

    /// Not IP at this layer: "other IP" when it rides inside an IP packet, else non-IP.
    fn not_ip(&self, reason: &'static str) -> NotTcp {
        let class = if self.inside_ip {
            FrameClass::OtherIp
        } else {
            FrameClass::NonIp
        };
        NotTcp { class, reason }
    }

    /// A tunnel's payload is not one twsleuth reads: counted, not guessed at.
    fn unknown(&mut self, reason: &'static str) -> NotTcp {
        self.notes |= notes::UNKNOWN_ENCAPSULATION;
        self.not_ip(reason)
    }

    /// One more nested header.
    fn nest(&mut self) -> Result<(), NotTcp> {
        self.nested += 1;
        if self.nested > MAX_NESTED_HEADERS {
            self.notes |= notes::TOO_DEEP;
            return Err(malformed(
                "encapsulation nested deeper than twsleuth follows",
            ));
        }
        Ok(())
    }

    /// Enters a tunnel: counts it and makes it the segment's vantage.
    fn tunnel(&mut self, encapsulations: u16, kind: TunnelKind, id: u32) -> Result<(), NotTcp> {
        self.nest()?;
        self.seen |= encapsulations;
        self.vantage.tunnel = kind;
        self.vantage.tunnel_id = id;
        Ok(())
    }

    fn vlan_tag(&mut self, vlan_id: u16) {
        if self.seen & seen::VLAN == 0 {
            self.seen |= seen::VLAN;
            self.vantage.outer_vlan = vlan_id;
        } else {
            self.vantage.inner_vlan = vlan_id;
        }
    }

    /// An IP length field reaches past the bytes at hand.
    fn beyond_capture(&mut self, beyond: bool) {
        if beyond && !self.in_first_fragment {
            self.notes |= notes::IP_BEYOND_CAPTURE;
        }
    }

    // ---------------------------------------------------------------- link layers

    #[inline(always)]
    fn link_layer(&mut self) -> Result<Layer<'a>, NotTcp> {
        let data = self.frame.data;
        Ok(match self.frame.link_type {
            LinkType::ETHERNET => Layer::Ethernet(data),
            // Linux cooked v1: protocol type in the last 2 of 16 header bytes.
            LinkType::LINUX_SLL => {
                let protocol = be16(data, 14)
                    .filter(|_| data.len() >= 16)
                    .ok_or_else(|| self.cut("LINUX_SLL header cut"))?;
                Layer::EtherType(protocol, &data[16..])
            }
            // Linux cooked v2: protocol type in the first 2 of 20 header bytes.
            LinkType::LINUX_SLL2 => {
                let protocol = be16(data, 0)
                    .filter(|_| data.len() >= 20)
                    .ok_or_else(|| self.cut("LINUX_SLL2 header cut"))?;
                Layer::EtherType(protocol, &data[20..])
            }
            LinkType::NULL => self.bsd_loopback(data, false)?,
            LinkType::LOOP => self.bsd_loopback(data, true)?,
            LinkType::RAW | LinkType::RAW_DLT_14 => self.raw_ip(data)?,
            // 12 is DLT_RAW on most systems but DLT_LOOP on OpenBSD (Wireshark's
            // wiretap/pcap-common.c): a version nibble of 0 is no IP packet, and is the first
            // byte of a LOOP header's network-order address family.
            LinkType::RAW_DLT_12 => match data.first() {
                Some(first) if first >> 4 == 0 => self.bsd_loopback(data, true)?,
                _ => self.raw_ip(data)?,
            },
            LinkType::IPV4 => Layer::Ipv4(data),
            LinkType::IPV6 => Layer::Ipv6(data),
            LinkType::PPP => Layer::Ppp(without_hdlc_address_and_control(data)),
            // PPP in HDLC-like framing, or Cisco HDLC framing when the address is 0x0F or
            // 0x8F (the LINKTYPE_PPP_HDLC definition; RFC 1547 section 4.3.1).
            LinkType::PPP_HDLC => match data.first() {
                Some(0x0f | 0x8f) => self.cisco_hdlc(data)?,
                _ => Layer::Ppp(without_hdlc_address_and_control(data)),
            },
            LinkType::C_HDLC => self.cisco_hdlc(data)?,
            LinkType::FDDI => self.fddi(data)?,
            _ => {
                self.notes |= notes::UNDECODED_LINK_TYPE;
                return Err(not_tcp(FrameClass::NonIp, "link type not decoded"));
            }
        })
    }

    fn bsd_loopback(&self, data: &'a [u8], big_endian: bool) -> Result<Layer<'a>, NotTcp> {
        // NULL stores the family in the capturing host's byte order, which the file does not
        // record; a family is small, so a value with high bits set is byte-swapped (libpcap's
        // `swap_null_header` reasoning).
        let mut family = u32_at(data, big_endian).ok_or_else(|| self.cut("loopback header cut"))?;
        if !big_endian && family & 0xffff_0000 != 0 {
            family = family.swap_bytes();
        }
        if family == BSD_AF_INET {
            Ok(Layer::Ipv4(&data[4..]))
        } else if BSD_AF_INET6.contains(&family) {
            Ok(Layer::Ipv6(&data[4..]))
        } else {
            Err(not_tcp(FrameClass::NonIp, "loopback family is not IP"))
        }
    }

    fn raw_ip(&self, data: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        match data.first().map(|b| b >> 4) {
            Some(4) => Ok(Layer::Ipv4(data)),
            Some(6) => Ok(Layer::Ipv6(data)),
            Some(_) => Err(malformed("RAW frame is neither IPv4 nor IPv6")),
            None => Err(self.cut("empty RAW frame")),
        }
    }

    /// Cisco HDLC: address (0x0F unicast, 0x8F broadcast), control 0x00, then an ethertype
    /// (Wireshark's packet-chdlc.c); SLARP keepalives (0x8035) end as non-IP.
    fn cisco_hdlc(&self, data: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let protocol = be16(data, 2).ok_or_else(|| self.cut("Cisco HDLC header cut"))?;
        Ok(Layer::EtherType(protocol, &data[4..]))
    }

    /// FDDI: frame control, destination and source addresses (13 bytes), then 802.2 LLC for
    /// the frames whose frame control says LLC (bits `CLFFZZZZ` with FF = 01; ANSI X3.139).
    /// libpcap's optional 3 bytes of padding before the frame control are not expected, as in
    /// Wireshark's default.
    fn fddi(&self, data: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let header = data.get(..13).ok_or_else(|| self.cut("FDDI header cut"))?;
        if header[0] & 0x30 != 0x10 {
            return Err(not_tcp(FrameClass::NonIp, "FDDI frame is not an LLC frame"));
        }
        Ok(Layer::Llc(&data[13..]))
    }

    #[inline(always)]
    fn ethernet(&self, bytes: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let ethertype = be16(bytes, 12).ok_or_else(|| self.cut("Ethernet header cut"))?;
        Ok(if ethertype <= ETHERNET_MAX_LENGTH {
            Layer::Llc(&bytes[14..])
        } else {
            Layer::EtherType(ethertype, &bytes[14..])
        })
    }

    /// IEEE 802.2 LLC: IP and ARP ride in SNAP (DSAP = SSAP = 0xAA, UI control 0x03) with an
    /// organization code that says an ethertype follows: 00-00-00 (RFC 1042) or 00-00-F8
    /// (IEEE 802.1H).
    fn llc(&self, bytes: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let llc = bytes.get(..3).ok_or_else(|| self.cut("LLC header cut"))?;
        if llc != [0xaa, 0xaa, 0x03] {
            return Err(self.not_ip("802.2 LLC frame is not SNAP"));
        }
        let snap = bytes.get(3..8).ok_or_else(|| self.cut("SNAP header cut"))?;
        if snap[..3] != [0, 0, 0] && snap[..3] != [0, 0, 0xf8] {
            return Err(self.not_ip("SNAP organization code is not for ethertypes"));
        }
        Ok(Layer::EtherType(
            u16::from_be_bytes([snap[3], snap[4]]),
            &bytes[8..],
        ))
    }

    #[inline(always)]
    fn ethertype(&mut self, ethertype: u16, rest: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        Ok(match ethertype {
            ETHERTYPE_IPV4 => Layer::Ipv4(rest),
            ETHERTYPE_IPV6 => Layer::Ipv6(rest),
            // IEEE 802.1Q tag: TCI (priority 3 bits, DEI 1, VLAN id 12), then the next type.
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                self.nest()?;
                let (Some(tci), Some(next)) = (be16(rest, 0), be16(rest, 2)) else {
                    return Err(self.cut("VLAN tag cut"));
                };
                self.vlan_tag(tci & 0x0fff);
                if next <= ETHERNET_MAX_LENGTH {
                    Layer::Llc(&rest[4..])
                } else {
                    Layer::EtherType(next, &rest[4..])
                }
            }
            ETHERTYPE_MPLS_UNICAST | ETHERTYPE_MPLS_MULTICAST => Layer::Mpls(rest),
            ETHERTYPE_PPPOE_SESSION => self.pppoe(rest)?,
            _ => return Err(self.not_ip("ethertype is not IP")),
        })
    }

    /// PPPoE session stage (RFC 2516 section 4): VER 1 and TYPE 1 (0x11), CODE 0x00, session
    /// id, length, then a PPP protocol field.
    fn pppoe(&mut self, rest: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let header = rest.get(..6).ok_or_else(|| self.cut("PPPoE header cut"))?;
        if header[..2] != [0x11, 0x00] {
            return Err(self.unknown("PPPoE header is not a version 1 session header"));
        }
        let session = u16::from_be_bytes([header[2], header[3]]);
        self.tunnel(seen::PPPOE, TunnelKind::Pppoe, u32::from(session))?;
        Ok(Layer::Ppp(&rest[6..]))
    }

    /// A PPP protocol field (RFC 1661 section 2): 2 bytes, or 1 when compressed (PFC, section
    /// 6.5). Protocol numbers have an odd low byte and an even high byte, so an odd first byte
    /// is a whole 1-byte field. Control protocols (LCP, IPCP, …) end as non-IP.
    fn ppp(&self, bytes: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let (protocol, rest) = match bytes.first() {
            None => return Err(self.cut("PPP protocol cut")),
            Some(&first) if first & 1 == 1 => (u16::from(first), &bytes[1..]),
            Some(_) => (
                be16(bytes, 0).ok_or_else(|| self.cut("PPP protocol cut"))?,
                &bytes[2..],
            ),
        };
        match protocol {
            // RFC 1332, RFC 5072, RFC 3032 section 4 (MPLS unicast and multicast).
            0x0021 => Ok(Layer::Ipv4(rest)),
            0x0057 => Ok(Layer::Ipv6(rest)),
            0x0281 | 0x0283 => Ok(Layer::Mpls(rest)),
            _ => Err(self.not_ip("PPP protocol is not IP")),
        }
    }

    /// An MPLS label stack (RFC 3032 section 2.1: label 20 bits, traffic class 3, bottom of
    /// stack 1, TTL 8). Nothing in the stack says what follows it; like Wireshark's
    /// packet-mpls.c, the first nibble after it is read: 4 and 6 are IP versions, 0 begins a
    /// pseudowire control word (RFC 4385 section 3) followed here by an Ethernet pseudowire's
    /// frame (RFC 4448), Wireshark's default too. Anything else is counted as unknown.
    fn mpls(&mut self, bytes: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        self.seen |= seen::MPLS;
        let mut rest = bytes;
        let bottom_label = loop {
            self.nest()?;
            let entry = be32(rest, 0).ok_or_else(|| self.cut("MPLS label cut"))?;
            rest = &rest[4..];
            if entry & 0x100 != 0 {
                break entry >> 12;
            }
        };
        self.vantage.tunnel = TunnelKind::Mpls;
        self.vantage.tunnel_id = bottom_label;
        match rest.first().map(|b| b >> 4) {
            Some(4) => Ok(Layer::Ipv4(rest)),
            Some(6) => Ok(Layer::Ipv6(rest)),
            Some(0) => {
                let frame = rest
                    .get(4..)
                    .ok_or_else(|| self.cut("pseudowire control word cut"))?;
                Ok(Layer::Ethernet(frame))
            }
            Some(_) => Err(self.unknown("MPLS payload is neither IP nor a pseudowire")),
            None => Err(self.cut("MPLS payload cut")),
        }
    }

    // ---------------------------------------------------------------- IP

    #[inline(always)]
    fn ipv4(&mut self, ip: &'a [u8]) -> Result<Step<'a>, NotTcp> {
        // RFC 791 section 3.1.
        let base = ip.get(..20).ok_or_else(|| self.cut("IPv4 header cut"))?;
        let header_len = usize::from(base[0] & 0x0f) * 4;
        if base[0] >> 4 != 4 || header_len < 20 {
            return Err(malformed("bad IPv4 header"));
        }
        if ip.len() < header_len {
            return Err(self.cut("IPv4 header cut"));
        }
        // A total length of 0 is what TSO hands to the capture before the NIC fills it in
        // (Wireshark: "assuming TCP segmentation offload"): the frame's length stands in for it.
        let total_len = match usize::from(u16::from_be_bytes([base[2], base[3]])) {
            0 => ip.len(),
            len => len,
        };
        if total_len < header_len {
            return Err(malformed("IPv4 total length shorter than its header"));
        }
        // Beyond the captured bytes: a snaplen cut, or a frame cut by whatever captured it
        // (a mirror session's truncation): the headers that are there are read.
        self.beyond_capture(total_len > ip.len());
        let payload = &ip[header_len..ip.len().min(total_len)];
        let payload_len = total_len - header_len;
        let identification = u16::from_be_bytes([base[4], base[5]]);
        let flags_and_offset = u16::from_be_bytes([base[6], base[7]]);
        let addresses = Addresses::V4(
            u32::from_be_bytes([base[12], base[13], base[14], base[15]]),
            u32::from_be_bytes([base[16], base[17], base[18], base[19]]),
        );
        let protocol = base[9];
        if !self.inside_ip {
            self.after_ip = ip.get(total_len..).unwrap_or(&[]);
        }
        self.inside_ip = true;
        let fragment = Fragment {
            offset: usize::from(flags_and_offset & 0x1fff) * 8,
            captured: payload,
            len: payload_len,
            more: flags_and_offset & 0x2000 != 0,
        };
        if fragment.offset > 0 || fragment.more {
            // The length is what reassembly and "the header continues in the next fragment"
            // rest on: a fragment without one (0, TSO's placeholder) is not a fragment TSO
            // makes, and its stand-in length would change with a snaplen cut.
            if base[2..4] == [0, 0] {
                return Err(malformed("IP fragment without a length"));
            }
            return self.fragment(
                protocol,
                addresses,
                u32::from(identification),
                fragment,
                identification,
                true,
            );
        }
        self.ip_payload(protocol, payload, payload_len, addresses, identification)
    }

    fn ipv6(&mut self, ip: &'a [u8]) -> Result<Step<'a>, NotTcp> {
        // RFC 8200 section 3.
        let fixed = ip.get(..40).ok_or_else(|| self.cut("IPv6 header cut"))?;
        if fixed[0] >> 4 != 6 {
            return Err(malformed("bad IPv6 header"));
        }
        // Payload length 0: a jumbogram or TSO; the frame's length stands in for it.
        let payload_len = match usize::from(u16::from_be_bytes([fixed[4], fixed[5]])) {
            0 => ip.len() - 40,
            len => len,
        };
        self.beyond_capture(40 + payload_len > ip.len());
        let payload = &ip[40..ip.len().min(40 + payload_len)];
        let address = |at: usize| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&fixed[at..at + 16]);
            u128::from_be_bytes(octets)
        };
        let addresses = Addresses::V6(address(8), address(24));
        if !self.inside_ip {
            self.after_ip = ip.get(40 + payload_len..).unwrap_or(&[]);
        }
        self.inside_ip = true;

        // Extension headers up to the upper-layer one (RFC 8200 section 4): the same ones
        // etherparse walked before (Hop-by-Hop only first, Routing, Destination Options,
        // Fragment, Authentication).
        let mut next = fixed[6];
        let mut at = 0;
        let mut walked = 0;
        let mut fragment: Option<(usize, bool, u32)> = None;
        let mut headers_after_fragment = false;
        loop {
            let header_len = match next {
                IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DESTINATION_OPTIONS => {
                    if next == IPV6_HOP_BY_HOP && walked > 0 {
                        return Err(malformed("IPv6 Hop-by-Hop header not first"));
                    }
                    let length = payload
                        .get(at + 1)
                        .ok_or_else(|| self.cut("IPv6 extension header cut"))?;
                    (usize::from(*length) + 1) * 8
                }
                // RFC 4302 section 2.2: the length counts 4-byte units, minus 2.
                IPV6_AUTHENTICATION => {
                    let length = payload
                        .get(at + 1)
                        .ok_or_else(|| self.cut("IPv6 extension header cut"))?;
                    (usize::from(*length) + 2) * 4
                }
                IPV6_FRAGMENT => 8,
                _ => break,
            };
            let header = payload
                .get(at..at + header_len)
                .ok_or_else(|| self.cut("IPv6 extension header cut"))?;
            if next == IPV6_FRAGMENT {
                // RFC 8200 section 4.5: next header, reserved, offset (13 bits) and M, id.
                let offset_and_more = u16::from_be_bytes([header[2], header[3]]);
                let identification =
                    u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                let offset = usize::from(offset_and_more >> 3) * 8;
                fragment = Some((offset, offset_and_more & 1 != 0, identification));
                next = header[0];
                at += header_len;
                // What follows in a later fragment is data, not headers.
                if offset > 0 {
                    break;
                }
            } else {
                headers_after_fragment |= fragment.is_some();
                next = header[0];
                at += header_len;
            }
            walked += 1;
        }
        let transport = &payload[at..];
        let transport_len = payload_len - at;
        if let Some((offset, more, identification)) = fragment.filter(|f| f.0 > 0 || f.1) {
            // A jumbogram (payload length 0) cannot be fragmented (RFC 2675 section 3).
            if fixed[4..6] == [0, 0] {
                return Err(malformed("IP fragment without a length"));
            }
            let fragment = Fragment {
                offset,
                captured: transport,
                len: transport_len,
                more,
            };
            // Reassembly takes the TCP header as the start of the fragmentable part, which it
            // is when no other header follows the fragment header.
            return self.fragment(
                next,
                addresses,
                identification,
                fragment,
                0,
                !headers_after_fragment,
            );
        }
        self.ip_payload(next, transport, transport_len, addresses, 0)
    }

    /// An IPv4 fragment, or an IPv6 packet with a fragment header that fragments.
    fn fragment(
        &mut self,
        protocol: u8,
        addresses: Addresses,
        identification: u32,
        fragment: Fragment<'a>,
        ip_id: u16,
        reassemblable: bool,
    ) -> Result<Step<'a>, NotTcp> {
        if fragment.offset + fragment.len > MAX_DATAGRAM_BYTES {
            return Err(malformed("IP fragment ends beyond the largest datagram"));
        }
        if protocol != IP_PROTOCOL_TCP {
            if fragment.offset > 0 {
                return Err(not_tcp(FrameClass::Fragment, "IP fragment"));
            }
            // The first fragment of a tunnel packet holds its inner headers (a fragment is
            // far longer than they are): decoded from it, inner lengths beyond it expected.
            self.in_first_fragment = true;
            return self.ip_payload(protocol, fragment.captured, fragment.len, addresses, ip_id);
        }
        if reassemblable {
            if let Some(defragmenter) = self.defragmenter.as_deref_mut() {
                let (src, dst) = addresses.ip_addrs();
                let key = DatagramKey {
                    src,
                    dst,
                    identification,
                    vantage: self.vantage,
                };
                let Some(done) = defragmenter.add(key, self.frame.ts_ns, &fragment) else {
                    return Err(not_tcp(FrameClass::Fragment, "IP fragment"));
                };
                self.reassembled = Some(done);
                return Ok(self.found_tcp(addresses, ip_id, &[], done.datagram_len, false));
            }
        }
        if fragment.offset > 0 {
            return Err(not_tcp(FrameClass::Fragment, "IP fragment"));
        }
        Ok(self.found_tcp(addresses, ip_id, fragment.captured, fragment.len, true))
    }

    /// What an IP header carries: TCP, another IP header, GRE, or UDP (which may be a tunnel).
    fn ip_payload(
        &mut self,
        protocol: u8,
        payload: &'a [u8],
        payload_len: usize,
        addresses: Addresses,
        ip_id: u16,
    ) -> Result<Step<'a>, NotTcp> {
        match protocol {
            IP_PROTOCOL_TCP => Ok(self.found_tcp(addresses, ip_id, payload, payload_len, false)),
            IP_PROTOCOL_IPV4 => {
                self.tunnel(seen::IP_IN_IP, TunnelKind::IpInIp, 0)?;
                Ok(Step::Inner(Layer::Ipv4(payload)))
            }
            IP_PROTOCOL_IPV6 => {
                self.tunnel(seen::IP_IN_IP, TunnelKind::IpInIp, 0)?;
                Ok(Step::Inner(Layer::Ipv6(payload)))
            }
            IP_PROTOCOL_GRE => self.gre(payload).map(Step::Inner),
            IP_PROTOCOL_UDP => self.udp(payload).map(Step::Inner),
            _ => Err(not_tcp(FrameClass::OtherIp, "IP protocol is not TCP")),
        }
    }

    // ---------------------------------------------------------------- tunnels

    /// GRE (RFC 2784; key and sequence number RFC 2890): flags C (checksum and reserved1
    /// present), K (key), S (sequence number), version 0. RFC 1701's R bit (routing: the
    /// offset field and source route entries) is read too, as Wireshark's packet-gre.c does.
    /// Version 1 is PPTP's enhanced GRE (RFC 2637), whose PPP payload is nearly always
    /// MPPE-encrypted: counted as unknown.
    fn gre(&mut self, payload: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        const CHECKSUM: u16 = 0x8000;
        const ROUTING: u16 = 0x4000;
        const KEY: u16 = 0x2000;
        const SEQUENCE: u16 = 0x1000;
        const VERSION: u16 = 0x0007;
        let base = payload.get(..4).ok_or_else(|| self.cut("GRE header cut"))?;
        let flags = u16::from_be_bytes([base[0], base[1]]);
        let protocol = u16::from_be_bytes([base[2], base[3]]);
        if flags & VERSION != 0 {
            self.seen |= seen::GRE;
            return Err(self.unknown("GRE version is not 0"));
        }
        let mut len = 4;
        if flags & (CHECKSUM | ROUTING) != 0 {
            len += 4;
        }
        let mut key = 0;
        if flags & KEY != 0 {
            key = be32(payload, len).ok_or_else(|| self.cut("GRE header cut"))?;
            len += 4;
        }
        if flags & SEQUENCE != 0 {
            len += 4;
        }
        if flags & ROUTING != 0 {
            // Source route entries (RFC 1701 section 2.1): address family, SRE offset, SRE
            // length, the route; family 0 with length 0 ends the list.
            loop {
                let entry = payload
                    .get(len..len + 4)
                    .ok_or_else(|| self.cut("GRE routing cut"))?;
                let entry_len = usize::from(entry[3]);
                len += 4 + entry_len;
                if entry[..2] == [0, 0] && entry_len == 0 {
                    break;
                }
            }
        }
        let inner = payload
            .get(len..)
            .ok_or_else(|| self.cut("GRE header cut"))?;
        if matches!(protocol, ETHERTYPE_ERSPAN_1_2 | ETHERTYPE_ERSPAN_3) {
            return self.erspan(flags, inner);
        }
        self.tunnel(seen::GRE, TunnelKind::Gre, key)?;
        match protocol {
            ETHERTYPE_IPV4 => Ok(Layer::Ipv4(inner)),
            ETHERTYPE_IPV6 => Ok(Layer::Ipv6(inner)),
            ETHERTYPE_TEB => Ok(Layer::Ethernet(inner)),
            ETHERTYPE_MPLS_UNICAST | ETHERTYPE_MPLS_MULTICAST => Ok(Layer::Mpls(inner)),
            _ => Err(self.unknown("GRE protocol type not decoded")),
        }
    }

    /// ERSPAN (draft-foschiano-erspan), read as Wireshark's packet-erspan.c does: a GRE
    /// header without any flag is type I (no ERSPAN header, as Broadcom's Trident 2 sends);
    /// otherwise the ERSPAN header's version says type II (1: 8 bytes) or type III (2: 12
    /// bytes, plus an 8-byte platform-specific subheader when its O bit is set).
    fn erspan(&mut self, gre_flags: u16, bytes: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        const ERSPAN: u16 = seen::GRE | seen::ERSPAN;
        if gre_flags == 0 {
            self.tunnel(ERSPAN, TunnelKind::Erspan, 0)?;
            return Ok(Layer::Ethernet(bytes));
        }
        let first = bytes
            .get(..4)
            .ok_or_else(|| self.cut("ERSPAN header cut"))?;
        // COS 3 bits, En or BSO 2, T 1, session id 10.
        let session = u32::from(u16::from_be_bytes([first[2], first[3]]) & 0x03ff);
        match first[0] >> 4 {
            1 => {
                let frame = bytes
                    .get(8..)
                    .ok_or_else(|| self.cut("ERSPAN header cut"))?;
                self.tunnel(ERSPAN, TunnelKind::Erspan, session)?;
                Ok(Layer::Ethernet(frame))
            }
            2 => {
                let header = bytes
                    .get(..12)
                    .ok_or_else(|| self.cut("ERSPAN header cut"))?;
                // P 1 bit, FT 5, hardware id 6, D 1, Gra 2, O 1.
                let last = u16::from_be_bytes([header[10], header[11]]);
                let header_len = if last & 1 != 0 { 20 } else { 12 };
                let payload = bytes
                    .get(header_len..)
                    .ok_or_else(|| self.cut("ERSPAN platform subheader cut"))?;
                self.tunnel(ERSPAN, TunnelKind::Erspan, session)?;
                // Frame type: 0 an Ethernet frame, 2 an IP packet (draft-foschiano-erspan-03
                // section 4.3; Wireshark reads every payload as Ethernet).
                match (last >> 10) & 0x1f {
                    0 => Ok(Layer::Ethernet(payload)),
                    2 => match payload.first().map(|b| b >> 4) {
                        Some(4) => Ok(Layer::Ipv4(payload)),
                        Some(6) => Ok(Layer::Ipv6(payload)),
                        Some(_) => Err(self.unknown("ERSPAN IP frame is neither IPv4 nor IPv6")),
                        None => Err(self.cut("ERSPAN payload cut")),
                    },
                    _ => Err(self.unknown("ERSPAN type III frame type not decoded")),
                }
            }
            _ => {
                self.seen |= seen::GRE;
                Err(self.unknown("ERSPAN version not decoded"))
            }
        }
    }

    /// UDP: a tunnel when the destination port is VXLAN's, Geneve's or GTP-U's (what their
    /// RFCs assign; the source port is a flow hash), else just UDP.
    fn udp(&mut self, payload: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let ports = payload.get(..4).ok_or_else(|| self.cut("UDP header cut"))?;
        let dst_port = u16::from_be_bytes([ports[2], ports[3]]);
        if !matches!(dst_port, UDP_PORT_VXLAN | UDP_PORT_GENEVE | UDP_PORT_GTP_U) {
            return Err(not_tcp(FrameClass::OtherIp, "UDP"));
        }
        let body = payload.get(8..).ok_or_else(|| self.cut("UDP header cut"))?;
        match dst_port {
            UDP_PORT_VXLAN => self.vxlan(body),
            UDP_PORT_GENEVE => self.geneve(body),
            _ => self.gtp_u(body),
        }
    }

    /// VXLAN (RFC 7348 section 5): flags with I (0x08) set for a valid VNI, 24 reserved bits,
    /// the VNI, 8 reserved bits, then an Ethernet frame.
    fn vxlan(&mut self, body: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let header = body.get(..8).ok_or_else(|| self.cut("VXLAN header cut"))?;
        if header[0] & 0x08 == 0 {
            return Err(self.unknown("VXLAN header without the I flag"));
        }
        let vni = u32::from_be_bytes([0, header[4], header[5], header[6]]);
        self.tunnel(seen::VXLAN, TunnelKind::Vxlan, vni)?;
        Ok(Layer::Ethernet(&body[8..]))
    }

    /// Geneve (RFC 8926 section 3.4): version (2 bits, 0), options length (6 bits, 4-byte
    /// units), O, C, reserved, protocol type, VNI (24 bits), reserved, then the options.
    fn geneve(&mut self, body: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let header = body.get(..8).ok_or_else(|| self.cut("Geneve header cut"))?;
        if header[0] >> 6 != 0 {
            return Err(self.unknown("Geneve version is not 0"));
        }
        let options_len = usize::from(header[0] & 0x3f) * 4;
        let protocol = u16::from_be_bytes([header[2], header[3]]);
        let vni = u32::from_be_bytes([0, header[4], header[5], header[6]]);
        let inner = body
            .get(8 + options_len..)
            .ok_or_else(|| self.cut("Geneve options cut"))?;
        self.tunnel(seen::GENEVE, TunnelKind::Geneve, vni)?;
        match protocol {
            ETHERTYPE_TEB => Ok(Layer::Ethernet(inner)),
            ETHERTYPE_IPV4 => Ok(Layer::Ipv4(inner)),
            ETHERTYPE_IPV6 => Ok(Layer::Ipv6(inner)),
            _ => Err(self.unknown("Geneve protocol type not decoded")),
        }
    }

    /// GTP-U (3GPP TS 29.281 section 5.1): flags (version 1, PT 1, E, S, PN), message type,
    /// length, TEID; when any of E, S, PN is set, a sequence number, an N-PDU number and the
    /// first extension header's type follow; each extension header (section 5.2) gives its
    /// length in 4-byte units and the next one's type in its last byte. A G-PDU (type 255)
    /// carries a user packet, read by its version nibble as Wireshark's packet-gtp.c does.
    fn gtp_u(&mut self, body: &'a [u8]) -> Result<Layer<'a>, NotTcp> {
        let header = body.get(..8).ok_or_else(|| self.cut("GTP-U header cut"))?;
        let flags = header[0];
        if flags >> 5 != 1 || flags & 0x10 == 0 {
            return Err(self.unknown("GTP-U header is not GTP version 1"));
        }
        let teid = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        self.tunnel(seen::GTP_U, TunnelKind::GtpU, teid)?;
        if header[1] != 0xff {
            return Err(not_tcp(
                FrameClass::OtherIp,
                "GTP-U message carries no user packet",
            ));
        }
        let mut at = 8;
        if flags & 0x07 != 0 {
            let optional = body
                .get(8..12)
                .ok_or_else(|| self.cut("GTP-U header cut"))?;
            let mut next_type = optional[3];
            at = 12;
            while next_type != 0 {
                let units = *body
                    .get(at)
                    .ok_or_else(|| self.cut("GTP-U extension header cut"))?;
                if units == 0 {
                    return Err(malformed("GTP-U extension header of length 0"));
                }
                let end = at + usize::from(units) * 4;
                next_type = *body
                    .get(end - 1)
                    .ok_or_else(|| self.cut("GTP-U extension header cut"))?;
                at = end;
            }
        }
        let packet = &body[at..];
        match packet.first().map(|b| b >> 4) {
            Some(4) => Ok(Layer::Ipv4(packet)),
            Some(6) => Ok(Layer::Ipv6(packet)),
            Some(_) => Err(self.unknown("GTP-U payload is neither IPv4 nor IPv6")),
            None => Err(self.cut("GTP-U payload cut")),
        }
    }

    // ---------------------------------------------------------------- TCP

    /// Notes where the TCP header is, for [`Walk::segment`].
    #[inline(always)]
    fn found_tcp(
        &mut self,
        addresses: Addresses,
        ip_id: u16,
        transport: &'a [u8],
        declared_len: usize,
        in_fragment: bool,
    ) -> Step<'a> {
        self.tcp = TcpAt {
            addresses,
            ip_id,
            transport,
            declared_len,
            in_fragment,
        };
        Step::Tcp
    }

    /// Reads the TCP header the IP layer found: from the bytes at hand of the IP payload (or
    /// the reassembled header), with the TCP length the IP header gives. The 20-byte base
    /// header (RFC 9293 section 3.1) is required; options cut by the snaplen are read as far as
    /// they go, as Wireshark does. In a first fragment, a header that does not fit in the
    /// fragment continues in the next one.
    #[inline(always)]
    fn segment(&self) -> Result<TcpSegment, NotTcp> {
        const CONTINUES: &str = "TCP header continues in the next fragment";
        let mut at = self.tcp;
        if let Some(reassembled) = &self.reassembled {
            at.transport = reassembled.tcp_header();
        }
        let Some(base) = at.transport.get(..TCP_MIN_HEADER_BYTES) else {
            return Err(
                if at.in_fragment && at.declared_len < TCP_MIN_HEADER_BYTES {
                    not_tcp(FrameClass::Fragment, CONTINUES)
                } else {
                    self.cut("TCP header cut")
                },
            );
        };
        let header_len = usize::from(base[12] >> 4) * 4;
        if header_len < TCP_MIN_HEADER_BYTES {
            return Err(malformed("TCP data offset below 5"));
        }
        if at.declared_len < header_len {
            return Err(if at.in_fragment {
                not_tcp(FrameClass::Fragment, CONTINUES)
            } else {
                malformed("TCP header longer than the IP payload")
            });
        }
        FoundTcp {
            at,
            header_len,
            vantage: self.vantage,
        }
        .segment(self.frame)
    }
}

/// The options twsleuth keeps (RFC 9293 section 3.2 layout: kind, length, value). A malformed
/// option ends the walk and the segment is kept, as Linux `tcp_parse_options` does. Written by
/// hand rather than with etherparse's iterator: this runs for every segment, and most carry
/// only NOP, NOP, timestamps.
#[inline(always)]
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
    let mut parsed = TcpOptions::default();
    walk_tcp_options(options, &mut parsed);
    parsed
}

/// Every option, as [`tcp_options`] reads them when they are not the usual three.
fn walk_tcp_options(options: &[u8], parsed: &mut TcpOptions) {
    const END: u8 = 0;
    const NOP: u8 = 1;
    const MSS: u8 = 2;
    const WINDOW_SCALE: u8 = 3;
    const SACK_PERMITTED: u8 = 4;
    const TIMESTAMPS: u8 = 8;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Frames of every shape [`common_case`] takes: IPv4 and IPv6 TCP with options and
    /// payload, on Ethernet with 0, 1, 2 and 3 tags, Linux cooked v1 and v2, and raw IP.
    fn common_frames() -> Vec<(LinkType, Vec<u8>)> {
        let options = [
            etherparse::TcpOptionElement::MaximumSegmentSize(1460),
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::WindowScale(7),
        ];
        let mut v4 = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 7, 1000)
            .syn()
            .options(&options)
            .unwrap()
            .write(&mut v4, b"payload")
            .unwrap();
        let mut v6 = Vec::new();
        etherparse::PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .tcp(40001, 443, 9, 1000)
            .ack(5)
            .write(&mut v6, b"data")
            .unwrap();
        let mut frames = Vec::new();
        for (ethertype, ip) in [(0x0800u16, &v4), (0x86dd, &v6)] {
            for tags in 0..4 {
                let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
                for tag in 0..tags {
                    frame.extend_from_slice(&[0x81, 0x00, 0x20, 100 + tag]);
                }
                frame.extend_from_slice(&ethertype.to_be_bytes());
                frame.extend_from_slice(ip);
                frames.push((LinkType::ETHERNET, frame));
            }
            let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            sll.extend_from_slice(&ethertype.to_be_bytes());
            sll.extend_from_slice(ip);
            frames.push((LinkType::LINUX_SLL, sll));
            let mut sll2 = ethertype.to_be_bytes().to_vec();
            sll2.extend_from_slice(&[0; 18]);
            sll2.extend_from_slice(ip);
            frames.push((LinkType::LINUX_SLL2, sll2));
            frames.push((LinkType::RAW, ip.clone()));
        }
        frames.push((LinkType::IPV4, v4));
        frames.push((LinkType::IPV6, v6));
        frames
    }

    /// The common case and the walk on one frame: the same segment and trace whenever the
    /// common case takes the frame.
    fn check_common_case(frame: &Frame<'_>) -> Result<bool, TestCaseError> {
        let mut trace = Trace::default();
        let Some(found) = common_case(frame, &mut trace) else {
            return Ok(false);
        };
        let mut walk = Walk::new(frame, None);
        prop_assert_eq!(walk.run(), found.segment(frame));
        prop_assert_eq!(
            Trace {
                seen: walk.seen,
                notes: walk.notes
            },
            trace
        );
        Ok(true)
    }

    #[test]
    fn common_cases_are_taken_by_the_common_path() {
        for (link_type, data) in common_frames() {
            let frame = Frame {
                file_index: 0,
                number: 1,
                ts_ns: 2,
                link_type,
                orig_len: data.len() as u32,
                data: &data,
                comment: None,
                section_comment: None,
            };
            let three_tags = link_type == LinkType::ETHERNET
                && data[12..14] == [0x81, 0x00]
                && data[20..22] == [0x81, 0x00];
            let taken = check_common_case(&frame).unwrap_or_else(|e| panic!("{link_type}: {e}"));
            assert_eq!(taken, !three_tags, "{link_type}: {data:02x?}");
        }
    }

    proptest! {
        #[test]
        fn common_cases_decode_as_the_walk_does(
            which in any::<prop::sample::Index>(),
            mutations in proptest::collection::vec(
                (any::<prop::sample::Index>(), any::<u8>()),
                0..3,
            ),
            cut in any::<prop::sample::Index>(),
            extra in 0u32..3000,
        ) {
            let frames = common_frames();
            let (link_type, mut data) = frames[which.index(frames.len())].clone();
            for (at, value) in &mutations {
                let i = at.index(data.len());
                data[i] = *value;
            }
            let len = cut.index(data.len() + 1);
            let frame = Frame {
                file_index: 0,
                number: 1,
                ts_ns: 2,
                link_type,
                orig_len: data.len() as u32 + extra,
                data: &data[..len],
                comment: None,
                section_comment: None,
            };
            check_common_case(&frame)?;
        }
    }

    fn walked(options: &[u8]) -> TcpOptions {
        let mut parsed = TcpOptions::default();
        walk_tcp_options(options, &mut parsed);
        parsed
    }

    #[test]
    fn the_usual_timestamps_read_at_once_as_the_walk_reads_them() {
        let mut state = 99u64;
        for _ in 0..1000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let mut options = vec![1, 1, 8, 10];
            options.extend_from_slice(&state.to_be_bytes());
            assert_eq!(tcp_options(&options), walked(&options));
            assert!(tcp_options(&options).timestamps.is_some());
            // With SACK blocks after them, or cut short, the walk reads them.
            options.extend_from_slice(&[1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
            assert_eq!(tcp_options(&options), walked(&options));
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
