//! Every frame ends in exactly one counter (DESIGN.md section 7); beside those classes, what
//! the decoder had to get through or could not read is counted too ([`Accounting`]).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use twsleuth_reader::LinkType;

/// The counter a frame ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameClass {
    /// A TCP segment, decoded.
    Tcp,
    /// IP, but another protocol (UDP, ICMP, …), or a tunnel whose payload is not TCP.
    OtherIp,
    /// Not IP (ARP, LLDP, STP, …) or a link type twsleuth does not decode.
    NonIp,
    /// Headers inconsistent with themselves or with the frame, or nested deeper than the
    /// decoder follows.
    Malformed,
    /// Cut by the snaplen before the TCP header was complete.
    Truncated,
    /// An IP fragment that yields no TCP segment by itself: a non-first fragment, a first
    /// fragment whose TCP header continues in the next one, or (with [`crate::Decoder`]) any
    /// fragment but the one that completes the TCP header.
    Fragment,
    /// Not traffic: a frame the capturing tool wrote to describe the capture (the F5 BIG-IP
    /// "fileinfo" pseudo-packet, [`crate::F5FileInfo`]). Only [`crate::Decoder`] finds them.
    CaptureInfo,
}

/// Frames that went through each encapsulation (a frame inside two counts in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Encapsulations {
    /// 802.1Q / 802.1ad tagged frames (any number of tags).
    pub vlan: u64,
    /// MPLS label stacks (RFC 3032), pseudowires included.
    pub mpls: u64,
    /// PPPoE sessions (RFC 2516).
    pub pppoe: u64,
    /// GRE (RFC 2784), ERSPAN included.
    pub gre: u64,
    /// ERSPAN type I, II or III (in GRE).
    pub erspan: u64,
    /// VXLAN (RFC 7348).
    pub vxlan: u64,
    /// Geneve (RFC 8926).
    pub geneve: u64,
    /// GTP-U (3GPP TS 29.281).
    pub gtp_u: u64,
    /// IPv4 or IPv6 directly in IPv4 or IPv6 (IP protocols 4 and 41).
    pub ip_in_ip: u64,
}

impl Encapsulations {
    /// True when no frame went through any encapsulation.
    pub fn is_none(&self) -> bool {
        *self == Encapsulations::default()
    }

    fn merge(&mut self, other: &Encapsulations) {
        self.vlan += other.vlan;
        self.mpls += other.mpls;
        self.pppoe += other.pppoe;
        self.gre += other.gre;
        self.erspan += other.erspan;
        self.vxlan += other.vxlan;
        self.geneve += other.geneve;
        self.gtp_u += other.gtp_u;
        self.ip_in_ip += other.ip_in_ip;
    }
}

/// Frames with bytes after their IP packet (the outermost one, within the frame), by what
/// those bytes are; each such frame is counted once, in the first that applies. TCP ignores
/// them: payload lengths come from the IP header (DESIGN.md section 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BytesAfterIp {
    /// An F5 BIG-IP Ethernet trailer ([`crate::F5Trailer`]; Ethernet padding or an FCS may
    /// come with it).
    pub f5_trailer: u64,
    /// An Ethernet frame check sequence: the last 4 bytes are the CRC-32 of the frame before
    /// them (Ethernet padding may come before it).
    pub ethernet_fcs: u64,
    /// Only zero bytes: Ethernet padding up to the 60-byte minimum frame (or a NIC's own).
    pub padding: u64,
    /// Anything else: another vendor's trailer (a Cisco ASA cluster's, a packet broker's
    /// timestamp), an F5 trailer cut by the snaplen, or bytes twsleuth does not know.
    pub unrecognized: u64,
}

impl BytesAfterIp {
    /// Frames with bytes after their IP packet.
    pub fn frames(&self) -> u64 {
        self.f5_trailer + self.ethernet_fcs + self.padding + self.unrecognized
    }

    /// True when no frame had bytes after its IP packet.
    pub fn is_none(&self) -> bool {
        self.frames() == 0
    }

    fn merge(&mut self, other: &BytesAfterIp) {
        self.f5_trailer += other.f5_trailer;
        self.ethernet_fcs += other.ethernet_fcs;
        self.padding += other.padding;
        self.unrecognized += other.unrecognized;
    }
}

/// Frames on link types twsleuth does not decode, by link type. The first
/// [`UndecodedLinkTypes::SLOTS`] link types seen keep a count each; frames on any further one
/// are counted together in [`UndecodedLinkTypes::other_link_types`] (a capture rarely mixes
/// more than one or two link types, and the accounting stays a small `Copy` value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UndecodedLinkTypes {
    slots: [(u16, u64); UndecodedLinkTypes::SLOTS],
    other: u64,
}

impl UndecodedLinkTypes {
    /// Link types counted one by one.
    pub const SLOTS: usize = 4;

    /// Counts one frame on `link_type`.
    pub fn count(&mut self, link_type: LinkType) {
        self.add(link_type.0, 1);
    }

    fn add(&mut self, link_type: u16, frames: u64) {
        for slot in &mut self.slots {
            if slot.1 == 0 {
                *slot = (link_type, frames);
                return;
            }
            if slot.0 == link_type {
                slot.1 += frames;
                return;
            }
        }
        self.other += frames;
    }

    /// Each link type with its frame count, in the order first seen.
    pub fn iter(&self) -> impl Iterator<Item = (LinkType, u64)> + '_ {
        self.slots
            .iter()
            .take_while(|slot| slot.1 > 0)
            .map(|&(link_type, frames)| (LinkType(link_type), frames))
    }

    /// Frames on link types beyond the first [`UndecodedLinkTypes::SLOTS`].
    pub fn other_link_types(&self) -> u64 {
        self.other
    }

    /// True when every frame was on a link type twsleuth decodes.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Frames on any undecoded link type.
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, frames)| frames).sum::<u64>() + self.other
    }

    fn merge(&mut self, other: &UndecodedLinkTypes) {
        for (link_type, frames) in other.iter() {
            self.add(link_type.0, frames);
        }
        self.other += other.other;
    }
}

/// A map from the link type's name (`"LINKTYPE 105"`) to its frame count, plus
/// `"other link types"` when some did not get a slot.
impl Serialize for UndecodedLinkTypes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (link_type, frames) in self.iter() {
            map.serialize_entry(&link_type.to_string(), &frames)?;
        }
        if self.other > 0 {
            map.serialize_entry("other link types", &self.other)?;
        }
        map.end()
    }
}

/// What the IP defragmenter of [`crate::Decoder`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reassembly {
    /// Fragmented datagrams whose TCP header was put together and decoded.
    pub reassembled: u64,
    /// Datagrams given up on: their fragments stopped coming for longer than the timeout, or
    /// the input ended first ([`crate::Decoder::finish`]).
    pub expired: u64,
    /// Fragments not kept because as many datagrams as allowed were already pending.
    pub dropped_over_cap: u64,
}

impl Reassembly {
    /// True when no fragment was seen by the defragmenter.
    pub fn is_idle(&self) -> bool {
        *self == Reassembly::default()
    }

    fn merge(&mut self, other: &Reassembly) {
        self.reassembled += other.reassembled;
        self.expired += other.expired;
        self.dropped_over_cap += other.dropped_over_cap;
    }
}

/// Frame counts by class (they add up to `frames`), and what the decoder went through or
/// could not read on the way. [`crate::Decoder`] fills every field; a caller of the stateless
/// [`crate::decode`] can only [`Accounting::count`] the classes.
///
/// Serialized, the counters after the classes are left out while they are 0 (like Zeek's
/// `weird.log`, only what happened is listed): the JSON of a capture that needed none of them
/// stays what it was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Frames read.
    pub frames: u64,
    /// Frames decoded as TCP segments.
    pub tcp_segments: u64,
    /// IP frames of another protocol.
    pub other_ip: u64,
    /// Non-IP frames.
    pub non_ip: u64,
    /// Malformed frames.
    pub malformed: u64,
    /// Snaplen-truncated frames whose TCP header could not be read.
    pub truncated: u64,
    /// IP fragments that yielded no segment by themselves.
    pub fragments: u64,
    /// Frames that describe the capture and are not traffic (the F5 fileinfo pseudo-packet);
    /// left out of the JSON while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub capture_info: u64,
    /// Frames that went through each encapsulation.
    #[serde(skip_serializing_if = "Encapsulations::is_none")]
    pub encapsulations: Encapsulations,
    /// Frames with a tunnel whose payload twsleuth does not read (a GRE protocol type, an
    /// ERSPAN version, a Geneve protocol type, an MPLS payload, a GTP-U payload it does not
    /// know) or a header on a tunnel's UDP port that is not that tunnel's. They are counted as
    /// other IP (non-IP under MPLS or PPPoE on Ethernet), never guessed at.
    #[serde(skip_serializing_if = "is_zero")]
    pub unknown_encapsulation: u64,
    /// Frames with more nested headers (VLAN tags, MPLS labels, tunnels) than the decoder
    /// follows; counted as malformed.
    #[serde(skip_serializing_if = "is_zero")]
    pub nesting_too_deep: u64,
    /// Frames on link types twsleuth does not decode (counted as non-IP), by link type.
    #[serde(skip_serializing_if = "UndecodedLinkTypes::is_empty")]
    pub undecoded_link_types: UndecodedLinkTypes,
    /// TCP segments read from frames that hold only part of their IP packet: the TCP header
    /// was whole, the payload length comes from the IP length fields.
    #[serde(skip_serializing_if = "is_zero")]
    pub tcp_from_truncated_frames: u64,
    /// Of those, the frames whose recorded original length is itself shorter than their IP
    /// packet (not a snaplen cut: a capture device or mirror session cut the frame and recorded
    /// the cut length, or the IP length field is wrong); Wireshark marks them "IPv4 total length
    /// exceeds packet length".
    #[serde(skip_serializing_if = "is_zero")]
    pub tcp_from_short_frames: u64,
    /// IP fragment reassembly.
    #[serde(skip_serializing_if = "Reassembly::is_idle")]
    pub reassembly: Reassembly,
    /// Frames with bytes after their IP packet (vendor trailers, FCS, padding), by kind.
    #[serde(skip_serializing_if = "BytesAfterIp::is_none")]
    pub bytes_after_ip: BytesAfterIp,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl Accounting {
    /// Counts one frame in its class.
    pub fn count(&mut self, class: FrameClass) {
        self.frames += 1;
        *match class {
            FrameClass::Tcp => &mut self.tcp_segments,
            FrameClass::OtherIp => &mut self.other_ip,
            FrameClass::NonIp => &mut self.non_ip,
            FrameClass::Malformed => &mut self.malformed,
            FrameClass::Truncated => &mut self.truncated,
            FrameClass::Fragment => &mut self.fragments,
            FrameClass::CaptureInfo => &mut self.capture_info,
        } += 1;
    }

    /// Frames that are not TCP segments, whatever the reason.
    pub fn non_tcp(&self) -> u64 {
        self.other_ip
            + self.non_ip
            + self.malformed
            + self.truncated
            + self.fragments
            + self.capture_info
    }

    /// True when the classes add up to the frame count.
    pub fn is_closed(&self) -> bool {
        self.tcp_segments + self.non_tcp() == self.frames
    }

    /// Adds another accounting (of another shard or input) to this one.
    pub fn merge(&mut self, other: &Accounting) {
        self.frames += other.frames;
        self.tcp_segments += other.tcp_segments;
        self.other_ip += other.other_ip;
        self.non_ip += other.non_ip;
        self.malformed += other.malformed;
        self.truncated += other.truncated;
        self.fragments += other.fragments;
        self.capture_info += other.capture_info;
        self.encapsulations.merge(&other.encapsulations);
        self.unknown_encapsulation += other.unknown_encapsulation;
        self.nesting_too_deep += other.nesting_too_deep;
        self.undecoded_link_types.merge(&other.undecoded_link_types);
        self.tcp_from_truncated_frames += other.tcp_from_truncated_frames;
        self.tcp_from_short_frames += other.tcp_from_short_frames;
        self.reassembly.merge(&other.reassembly);
        self.bytes_after_ip.merge(&other.bytes_after_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_counts_once_and_closes() {
        let mut accounting = Accounting::default();
        for class in [
            FrameClass::Tcp,
            FrameClass::OtherIp,
            FrameClass::NonIp,
            FrameClass::Malformed,
            FrameClass::Truncated,
            FrameClass::Fragment,
            FrameClass::CaptureInfo,
        ] {
            accounting.count(class);
        }
        assert_eq!(accounting.frames, 7);
        assert_eq!(accounting.non_tcp(), 6);
        assert!(accounting.is_closed());
    }

    #[test]
    fn undecoded_link_types_keep_four_counts_and_lump_the_rest() {
        let mut counts = UndecodedLinkTypes::default();
        for (link_type, frames) in [(105, 3), (147, 1), (105, 2), (6, 1), (7, 1), (8, 4)] {
            for _ in 0..frames {
                counts.count(LinkType(link_type));
            }
        }
        let kept: Vec<(u16, u64)> = counts.iter().map(|(l, n)| (l.0, n)).collect();
        assert_eq!(kept, [(105, 5), (147, 1), (6, 1), (7, 1)]);
        assert_eq!(counts.other_link_types(), 4);
        assert_eq!(counts.total(), 12);
        let mut merged = UndecodedLinkTypes::default();
        merged.count(LinkType(147));
        merged.merge(&counts);
        assert_eq!(merged.total(), 13);
        assert_eq!(merged.iter().next(), Some((LinkType(147), 2)));
    }

    #[test]
    fn counters_that_stayed_zero_are_left_out_of_the_json() {
        let mut accounting = Accounting::default();
        accounting.count(FrameClass::Tcp);
        let json = serde_json_keys(&accounting);
        assert_eq!(
            json,
            [
                "fragments",
                "frames",
                "malformed",
                "non_ip",
                "other_ip",
                "tcp_segments",
                "truncated"
            ]
        );
        accounting.encapsulations.gre = 1;
        accounting.undecoded_link_types.count(LinkType(105));
        let json = serde_json_keys(&accounting);
        assert!(json.contains(&"encapsulations".to_string()));
        assert!(json.contains(&"undecoded_link_types".to_string()));
        assert!(!json.contains(&"reassembly".to_string()));
    }

    /// The keys of the accounting's JSON object, sorted.
    fn serde_json_keys(accounting: &Accounting) -> Vec<String> {
        let value = serde_json::to_value(accounting).unwrap();
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn merge_adds_every_counter() {
        let mut one = Accounting::default();
        one.count(FrameClass::Tcp);
        one.encapsulations.vxlan = 2;
        one.unknown_encapsulation = 1;
        one.undecoded_link_types.count(LinkType(105));
        one.reassembly.expired = 3;
        one.tcp_from_short_frames = 4;
        one.count(FrameClass::CaptureInfo);
        one.bytes_after_ip.f5_trailer = 5;
        let mut sum = one;
        sum.merge(&one);
        assert_eq!(sum.frames, 4);
        assert_eq!(sum.capture_info, 2);
        assert_eq!(sum.bytes_after_ip.f5_trailer, 10);
        assert_eq!(sum.encapsulations.vxlan, 4);
        assert_eq!(sum.unknown_encapsulation, 2);
        assert_eq!(sum.undecoded_link_types.total(), 2);
        assert_eq!(sum.reassembly.expired, 6);
        assert_eq!(sum.tcp_from_short_frames, 8);
    }
}
