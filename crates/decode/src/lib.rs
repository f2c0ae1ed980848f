//! Packet decoding: a captured frame becomes a compact [`TcpSegment`] record, or a
//! [`NotTcp`] saying which accounting counter it ends in and why.
//!
//! - [`Decoder`] is the entry point the capture pipeline must use: it decodes the frames of a
//!   run in order, puts together TCP headers split across IP fragments, and counts every frame
//!   in its [`Accounting`] (classes, encapsulations, unknown tunnel payloads, undecoded link types,
//!   segments from truncated frames, reassembly). [`decode`] is the same decoding of one frame
//!   without state, for callers that look at frames one at a time.
//! - Link types: EN10MB, RAW (and the raw-IP DLT values 12 and 14), IPV4, IPV6, LINUX_SLL,
//!   LINUX_SLL2, NULL, LOOP, PPP, PPP_HDLC, C_HDLC, FDDI. Frames on other link types are
//!   non-IP and counted by link type ([`UndecodedLinkTypes`]).
//! - Inside: 802.1Q / 802.1ad tags (any depth), 802.2 LLC/SNAP, MPLS label stacks (and
//!   Ethernet pseudowires with a control word), PPPoE sessions, GRE (checksum, key, sequence
//!   number, routing), ERSPAN types I, II and III, VXLAN, Geneve, GTP-U (with extension
//!   headers), IPv4 and IPv6 in IPv4 or IPv6; IPv4 and IPv6 with extension headers; TCP with
//!   the MSS, window scale, SACK-permitted and timestamps options. Headers nest up to
//!   [`MAX_NESTED_HEADERS`] deep.
//! - Each segment carries its [`Vantage`]: VLAN ids and the tunnel (kind and id) it came out
//!   of.
//! - [`Accounting`] counts every frame in exactly one [`FrameClass`] (DESIGN.md section 7), and
//!   the bytes some frames carry after their IP packet ([`BytesAfterIp`]: padding, an FCS, a
//!   vendor trailer), which TCP ignores.
//! - F5 BIG-IP captures: the Ethernet trailer (both formats, every noise level) is parsed into
//!   [`F5Trailer`] beside the segment ([`Decoder::f5_trailer`]), counted by virtual server and
//!   RST cause ([`F5Summary`]); the fileinfo pseudo-packet ([`F5FileInfo`]) is capture
//!   information, not traffic.
//!
//! ```
//! use twsleuth_decode::Decoder;
//! use twsleuth_reader::CaptureReader;
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/capture/tunnels/vxlan.pcap");
//! let mut reader = CaptureReader::open(path, 0).unwrap();
//! let mut decoder = Decoder::default();
//! while reader.advance() {
//!     let frame = reader.current().unwrap();
//!     if let Ok(segment) = decoder.decode(&frame) {
//!         assert_eq!(segment.vantage.tunnel_id, 5001); // the VNI
//!     }
//! }
//! let accounting = decoder.finish();
//! assert_eq!(accounting.tcp_segments, 800);
//! assert_eq!(accounting.encapsulations.vxlan, accounting.frames);
//! assert!(accounting.is_closed());
//! ```
#![deny(missing_docs)]

mod accounting;
mod decode;
mod decoder;
mod defrag;
mod f5;
mod fcs;
mod segment;

pub use accounting::{
    Accounting, BytesAfterIp, Encapsulations, FrameClass, Reassembly, UndecodedLinkTypes,
};
pub use decode::{MAX_NESTED_HEADERS, NotTcp, decode};
pub use decoder::Decoder;
pub use defrag::DefragLimits;
pub use f5::{
    F5FileInfo, F5NameId, F5Noise, F5Peer, F5RstCause, F5Summary, F5Trailer, F5TrailerFormat,
    F5VirtualServer,
};
pub use segment::{FrameRef, TcpFlags, TcpOptions, TcpSegment, TcpTimestamps, TunnelKind, Vantage};
