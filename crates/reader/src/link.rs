//! Link-layer types, as numbered by tcpdump.org's LINKTYPE_ registry.

use std::fmt;

/// A capture's link-layer header type (the LINKTYPE_ value in a pcap header or a pcapng IDB).
///
/// Only the low 16 bits are kept: pcap's `network` field carries FCS flags in its upper bits
/// (see the pcap file format draft, section "LinkType and Additional Information").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II (with optional 802.1Q / 802.1ad tags).
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP (RFC 1661), with or without the HDLC-like address and control fields of RFC 1662.
    pub const PPP: LinkType = LinkType(9);
    /// FDDI (ANSI X3.139): frame control, addresses, then 802.2 LLC.
    pub const FDDI: LinkType = LinkType(10);
    /// Raw IP as libpcap wrote it before LINKTYPE_RAW existed: DLT_RAW is 12 on most systems
    /// (on OpenBSD 12 is DLT_LOOP; Wireshark's wiretap/pcap-common.c).
    pub const RAW_DLT_12: LinkType = LinkType(12);
    /// Raw IP as DLT_RAW on OpenBSD and BSD/OS.
    pub const RAW_DLT_14: LinkType = LinkType(14);
    /// PPP in HDLC-like framing (RFC 1662), or Cisco PPP with HDLC framing (RFC 1547).
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// Raw IPv4 or IPv6, told apart by the version nibble.
    pub const RAW: LinkType = LinkType(101);
    /// Cisco HDLC: address, control, then an ethertype.
    pub const C_HDLC: LinkType = LinkType(104);
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture v1 (`tcpdump -i any` on older libpcap).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux "cooked" capture v2 (`tcpdump -i any` on libpcap ≥ 1.10).
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The LINKTYPE_ name without its prefix, or `None` for types twsleuth does not decode.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            LinkType::NULL => "NULL",
            LinkType::ETHERNET => "EN10MB",
            LinkType::PPP => "PPP",
            LinkType::FDDI => "FDDI",
            LinkType::RAW_DLT_12 => "RAW (DLT 12)",
            LinkType::RAW_DLT_14 => "RAW (DLT 14)",
            LinkType::PPP_HDLC => "PPP_HDLC",
            LinkType::C_HDLC => "C_HDLC",
            LinkType::RAW => "RAW",
            LinkType::LOOP => "LOOP",
            LinkType::LINUX_SLL => "LINUX_SLL",
            LinkType::IPV4 => "IPV4",
            LinkType::IPV6 => "IPV6",
            LinkType::LINUX_SLL2 => "LINUX_SLL2",
            _ => return None,
        })
    }

    /// Link types are 16-bit; pcap and pcapng store them in wider fields.
    pub(crate) fn from_header_field(field: i32) -> LinkType {
        LinkType((field as u32 & 0xffff) as u16)
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "LINKTYPE {}", self.0),
        }
    }
}
