//! The compact TCP segment record that the rest of twsleuth works on.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Where a frame is in the inputs: enough to open it in Wireshark.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct FrameRef {
    /// Index of the input in the order the inputs were named; every capture found in a
    /// directory or tar archive is an input of its own (`dir/cap.pcap7`,
    /// `a10.tgz:core3.pcap`), so that the frame number is the one Wireshark shows for that
    /// file. 16 bits: a run reads at most 65,535 captures (more than any ring or per-core set
    /// seen; `CaptureSet::expand` refuses more, saying so) and a segment record stays small.
    pub file_index: u16,
    /// 1-based frame number within that input (Wireshark's `frame.number`).
    pub number: u64,
}

/// TCP header flags (RFC 9293 section 3.1), the low byte of the flags field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True when every flag of `other` is set.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// SYN without ACK: a connection request (or its retransmission).
    pub fn is_syn_only(self) -> bool {
        self.contains(TcpFlags::SYN) && !self.contains(TcpFlags::ACK)
    }

    /// SYN with ACK: a connection request's acceptance.
    pub fn is_syn_ack(self) -> bool {
        self.contains(TcpFlags::SYN) && self.contains(TcpFlags::ACK)
    }
}

impl fmt::Display for TcpFlags {
    /// Wireshark-style flag letters, e.g. `SA` for SYN+ACK, `.` for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(TcpFlags, char); 8] = [
            (TcpFlags::CWR, 'C'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ACK, 'A'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::FIN, 'F'),
        ];
        if self.0 == 0 {
            return f.write_str(".");
        }
        for (flag, letter) in LETTERS {
            if self.contains(flag) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// TCP timestamps option (RFC 7323 section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpTimestamps {
    /// TSval: the sender's timestamp clock.
    pub value: u32,
    /// TSecr: the most recent TSval received from the peer.
    pub echo_reply: u32,
}

/// The TCP options twsleuth needs; others are skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpOptions {
    /// Maximum segment size (RFC 9293 section 3.7.1).
    pub mss: Option<u16>,
    /// Window scale shift count (RFC 7323 section 2).
    pub window_scale: Option<u8>,
    /// SACK permitted (RFC 2018).
    pub sack_permitted: bool,
    /// Timestamps (RFC 7323 section 3).
    pub timestamps: Option<TcpTimestamps>,
}

/// One TCP segment as captured: a small owned `Copy` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpSegment {
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The frame it came from.
    pub frame: FrameRef,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field, unscaled.
    pub window: u16,
    /// IPv4 identification field (RFC 791); 0 for IPv6, which has none. A retransmission gets
    /// a new one, a second capture of the same packet keeps it.
    pub ip_id: u16,
    /// Payload length from the IP length fields, not from the captured bytes: snaplen cuts
    /// and Ethernet trailers (F5) do not change it.
    pub payload_len: u32,
    /// Options.
    pub options: TcpOptions,
    /// Where on the network the segment was seen: VLAN tags and the tunnel it came out of.
    /// Two segments with the same 4-tuple and different vantages are different packets (two
    /// tenants' overlapping addresses, or one packet seen on two mirror sessions).
    pub vantage: Vantage,
}

/// The kind of tunnel a segment came out of: the innermost one when tunnels nest, since that
/// one names the address space the segment's 4-tuple belongs to.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum TunnelKind {
    /// No tunnel.
    #[default]
    None,
    /// GRE (RFC 2784); the id is the key (RFC 2890), 0 when there is none.
    Gre,
    /// ERSPAN type I, II or III in GRE (draft-foschiano-erspan); the id is the session id (0
    /// for type I, which has no ERSPAN header).
    Erspan,
    /// VXLAN (RFC 7348); the id is the VNI.
    Vxlan,
    /// Geneve (RFC 8926); the id is the VNI.
    Geneve,
    /// GTP-U (3GPP TS 29.281); the id is the TEID.
    GtpU,
    /// MPLS (RFC 3032); the id is the bottom-of-stack label.
    Mpls,
    /// PPPoE session (RFC 2516); the id is the session id.
    Pppoe,
    /// IPv4 or IPv6 in IPv4 or IPv6 (RFC 2003, RFC 4213, RFC 2473); the id is 0 (the outer
    /// addresses name such a tunnel).
    IpInIp,
}

impl TunnelKind {
    /// True when the two directions of one connection usually carry different ids: a GTP-U
    /// TEID is chosen by the receiving end of each direction (TS 29.281 section 5.1), an MPLS
    /// label by the router that receives it (RFC 3031 section 3.1: each PE advertises its own
    /// VPN label), and Linux GRE tunnels may have an `ikey` and an `okey`.
    pub fn id_differs_by_direction(self) -> bool {
        matches!(self, TunnelKind::GtpU | TunnelKind::Mpls | TunnelKind::Gre)
    }
}

/// Where a segment was seen: its VLAN tags and the tunnel it came out of, in 12 bytes.
///
/// VLAN ids are 12 bits (IEEE 802.1Q); 0 means untagged (or priority-tagged, which is the
/// same network). The ERSPAN header's own VLAN field is not read: type III does not say
/// whether the mirrored frame still carries that tag, and the session id already tells
/// sessions apart.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Vantage {
    /// VLAN id of the first 802.1Q / 802.1ad tag from the wire inward (the outer frame's tag
    /// comes before any tag inside a tunnel).
    pub outer_vlan: u16,
    /// VLAN id of the last tag when there are two or more (QinQ's C-tag, or a tag inside a
    /// tunnel); 0 with one tag or none.
    pub inner_vlan: u16,
    /// The innermost tunnel.
    pub tunnel: TunnelKind,
    /// That tunnel's id (see [`TunnelKind`]).
    pub tunnel_id: u32,
}

impl Vantage {
    /// The vantage with the tunnel ids that usually differ between the two directions of one
    /// connection ([`TunnelKind::id_differs_by_direction`]) set to 0: what a flow key that puts
    /// both directions of a connection together should use.
    pub fn symmetric(self) -> Vantage {
        if self.tunnel.id_differs_by_direction() {
            Vantage {
                tunnel_id: 0,
                ..self
            }
        } else {
            self
        }
    }
}

// The record every stage passes around by value: 112 bytes. Growing it slows the whole
// pipeline (see `Decoder` for the side channel that carries vendor trailers instead).
const _: () = assert!(std::mem::size_of::<TcpSegment>() == 112);

impl TcpSegment {
    /// Sequence space the segment occupies: payload plus one for SYN and one for FIN
    /// (RFC 9293 section 3.4, SEG.LEN).
    pub fn seq_len(&self) -> u32 {
        self.payload_len
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::SYN)))
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::FIN)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_vantage_drops_only_per_direction_ids() {
        let vantage = |tunnel, tunnel_id| Vantage {
            outer_vlan: 100,
            inner_vlan: 0,
            tunnel,
            tunnel_id,
        };
        assert_eq!(
            vantage(TunnelKind::GtpU, 0x1000).symmetric(),
            vantage(TunnelKind::GtpU, 0)
        );
        assert_eq!(
            vantage(TunnelKind::Mpls, 200).symmetric(),
            vantage(TunnelKind::Mpls, 0)
        );
        assert_eq!(
            vantage(TunnelKind::Vxlan, 5001).symmetric(),
            vantage(TunnelKind::Vxlan, 5001)
        );
        assert_eq!(std::mem::size_of::<Vantage>(), 12);
    }

    #[test]
    fn flags_render_like_wireshark() {
        assert_eq!(TcpFlags(0x12).to_string(), "AS");
        assert_eq!(TcpFlags(0x14).to_string(), "AR");
        assert_eq!(TcpFlags(0).to_string(), ".");
        assert!(TcpFlags::SYN.is_syn_only());
        assert!(!TcpFlags(0x12).is_syn_only());
        assert!(TcpFlags(0x12).is_syn_ack());
    }
}
