//! Packet decoding: a captured frame becomes a compact [`TcpSegment`] record, or a
//! [`NotTcp`] saying which accounting counter it ends in and why.
//!
//! - [`decode`] handles the link types EN10MB (with 802.1Q / 802.1ad / QinQ tags), RAW, IPV4,
//!   IPV6, LINUX_SLL, LINUX_SLL2, NULL and LOOP; IPv4 and IPv6 with extension headers; TCP with
//!   the MSS, window scale, SACK-permitted and timestamps options.
//! - [`Accounting`] counts every frame in exactly one [`FrameClass`] (DESIGN.md section 7).
//!
//! ```
//! use twsleuth_decode::{decode, Accounting, FrameClass};
//! use twsleuth_reader::CaptureReader;
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/capture/en10mb.pcap");
//! let mut reader = CaptureReader::open(path, 0).unwrap();
//! let mut accounting = Accounting::default();
//! while reader.advance() {
//!     let frame = reader.current().unwrap();
//!     accounting.count(match decode(&frame) {
//!         Ok(_segment) => FrameClass::Tcp,
//!         Err(not_tcp) => not_tcp.class,
//!     });
//! }
//! assert!(accounting.tcp_segments > 0);
//! assert!(accounting.is_closed());
//! ```
#![deny(missing_docs)]

mod accounting;
mod decode;
mod segment;

pub use accounting::{Accounting, FrameClass};
pub use decode::{NotTcp, decode};
pub use segment::{FrameRef, TcpFlags, TcpOptions, TcpSegment, TcpTimestamps};
