//! The stateful decoder the capture pipeline uses: [`decode`](crate::decode) plus IP
//! reassembly, with every frame counted.

use twsleuth_reader::{Frame, LinkType};

use crate::accounting::{Accounting, FrameClass};
use crate::decode::{NotTcp, Trace, Walk, common_case, notes, seen};
use crate::defrag::{DefragLimits, Defragmenter};
use crate::f5::{self, F5NameId, F5Summary, F5Trailer};
use crate::fcs;
use crate::segment::{FrameRef, TcpFlags, TcpSegment};

/// Fileinfo pseudo-packets kept ([`F5Summary::file_info`]): one per BIG-IP capture read.
const MAX_FILE_INFO: usize = 4096;

/// Decodes the frames of one capture run in order, puts together TCP headers split across IP
/// fragments, and counts every frame in its [`Accounting`].
///
/// This is what the pipeline (reader → decoder → flow tracker) must use: one `Decoder` for the
/// merged frames of all inputs, fed in the order they are read, then [`Decoder::finish`].
/// [`decode`](crate::decode) stays for callers that look at frames one at a time.
///
/// A fragmented TCP datagram yields its segment in the frame that brings the last missing
/// piece of its TCP header or its last fragment, whichever comes later: the segment's frame
/// number and timestamp are that frame's, and it counts as [`FrameClass::Tcp`]; the datagram's
/// other fragments count as [`FrameClass::Fragment`]. That frame is where Wireshark (which
/// reassembles by default) shows the reassembled TCP segment whenever the fragments arrive in
/// order, so the frame number opens the right packet; and the segment comes out while its
/// frame is decoded, so segments stay in capture order for the flow tracker. Its payload
/// length is the whole datagram's. A datagram whose fragments never all come is given up after
/// [`DefragLimits::timeout_ns`] of capture time and counted in
/// [`crate::Reassembly::expired`].
///
/// Fragments are reassembled when they carry TCP directly (IPv4 protocol 6, or an IPv6
/// fragment header whose next header is TCP). The first fragment of a fragmented tunnel packet
/// holds the tunnel's and the inner packet's headers, and is decoded from them at once.
///
/// Bytes after a frame's IP packet are counted by kind ([`crate::BytesAfterIp`]). F5 BIG-IP
/// trailers among them are parsed: the last frame's is [`Decoder::f5_trailer`], and all are
/// counted in [`Decoder::f5`] (by virtual server and RST cause, with the fileinfo
/// pseudo-packets, which count as [`FrameClass::CaptureInfo`]). The segment record stays as it
/// is: a trailer is a side channel read after [`Decoder::decode`], so the hot path carries
/// none of it.
pub struct Decoder {
    defragmenter: Defragmenter,
    accounting: Accounting,
    f5: F5Summary,
    f5_trailer: Option<F5Trailer>,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(DefragLimits::default())
    }
}

impl Decoder {
    /// A decoder whose defragmenter keeps to `limits`.
    pub fn new(limits: DefragLimits) -> Decoder {
        Decoder {
            defragmenter: Defragmenter::new(limits),
            accounting: Accounting::default(),
            f5: F5Summary::default(),
            f5_trailer: None,
        }
    }

    /// Decodes the next frame and counts it. The caller must not count it again.
    pub fn decode(&mut self, frame: &Frame<'_>) -> Result<TcpSegment, NotTcp> {
        self.f5_trailer = None;
        let mut trace = Trace::default();
        if let Some(found) = common_case(frame, &mut trace) {
            let after_ip = found.bytes_after_ip(frame.data);
            if !after_ip.is_empty() {
                self.bytes_after_ip(frame, after_ip, Some(found.flags()));
            }
            // A common case can only have gone through VLAN tags, or be cut short.
            let accounting = &mut self.accounting;
            accounting.count(FrameClass::Tcp);
            accounting.encapsulations.vlan += u64::from(trace.seen & seen::VLAN != 0);
            if trace.notes & notes::IP_BEYOND_CAPTURE != 0 {
                accounting.tcp_from_truncated_frames += 1;
                accounting.tcp_from_short_frames +=
                    u64::from(frame.data.len() >= frame.orig_len as usize);
            }
            return found.segment(frame);
        }
        let mut walk = Walk::new(frame, Some(&mut self.defragmenter));
        let mut decoded = walk.run();
        let trace = Trace {
            seen: walk.seen,
            notes: walk.notes,
        };
        let after_ip = walk.after_ip;
        if !after_ip.is_empty() {
            let flags = decoded.as_ref().ok().map(|segment| segment.flags);
            self.bytes_after_ip(frame, after_ip, flags);
        }
        if let Err(not_tcp) = &decoded {
            if not_tcp.class == FrameClass::NonIp && frame.link_type == LinkType::ETHERNET {
                if let Some(capture_info) = self.capture_info(frame) {
                    decoded = Err(capture_info);
                }
            }
        }
        self.accounting.count(match &decoded {
            Ok(_) => FrameClass::Tcp,
            Err(not_tcp) => not_tcp.class,
        });
        if trace != Trace::default() {
            self.count_details(frame, trace.seen, trace.notes, decoded.is_ok());
        }
        decoded
    }

    #[cold]
    fn count_details(&mut self, frame: &Frame<'_>, seen: u16, noted: u8, tcp: bool) {
        let encapsulations = &mut self.accounting.encapsulations;
        for (bit, counter) in [
            (seen::VLAN, &mut encapsulations.vlan),
            (seen::MPLS, &mut encapsulations.mpls),
            (seen::PPPOE, &mut encapsulations.pppoe),
            (seen::GRE, &mut encapsulations.gre),
            (seen::ERSPAN, &mut encapsulations.erspan),
            (seen::VXLAN, &mut encapsulations.vxlan),
            (seen::GENEVE, &mut encapsulations.geneve),
            (seen::GTP_U, &mut encapsulations.gtp_u),
            (seen::IP_IN_IP, &mut encapsulations.ip_in_ip),
        ] {
            *counter += u64::from(seen & bit != 0);
        }
        let accounting = &mut self.accounting;
        accounting.unknown_encapsulation += u64::from(noted & notes::UNKNOWN_ENCAPSULATION != 0);
        accounting.nesting_too_deep += u64::from(noted & notes::TOO_DEEP != 0);
        if noted & notes::UNDECODED_LINK_TYPE != 0 {
            accounting.undecoded_link_types.count(frame.link_type);
        }
        if tcp && noted & notes::IP_BEYOND_CAPTURE != 0 {
            accounting.tcp_from_truncated_frames += 1;
            if frame.data.len() >= frame.orig_len as usize {
                accounting.tcp_from_short_frames += 1;
            }
        }
    }

    /// Counts the bytes after a frame's IP packet by kind, and parses an F5 trailer among
    /// them. Wireshark reads an F5 trailer only in a frame captured whole, and so does this.
    #[cold]
    fn bytes_after_ip(&mut self, frame: &Frame<'_>, after_ip: &[u8], flags: Option<TcpFlags>) {
        let counts = &mut self.accounting.bytes_after_ip;
        if frame.link_type != LinkType::ETHERNET {
            counts.unrecognized += 1;
            return;
        }
        let whole = frame.data.len() >= frame.orig_len as usize;
        if whole {
            if let Some(parsed) = f5::parse_trailer(after_ip) {
                counts.f5_trailer += 1;
                let at = FrameRef {
                    file_index: frame.file_index,
                    number: frame.number,
                };
                self.f5_trailer = Some(self.f5.record(&parsed, at, flags));
                return;
            }
        }
        if whole && fcs::ends_with_fcs(frame.data) {
            counts.ethernet_fcs += 1;
        } else if after_ip.iter().all(|&b| b == 0) {
            counts.padding += 1;
        } else {
            counts.unrecognized += 1;
        }
    }

    /// The F5 fileinfo pseudo-packet: its fields are kept and it counts as capture
    /// information, not as a non-IP frame.
    #[cold]
    fn capture_info(&mut self, frame: &Frame<'_>) -> Option<NotTcp> {
        let mut info = f5::parse_fileinfo(frame.data)?;
        info.file_index = frame.file_index;
        info.frame_number = frame.number;
        if self.f5.file_info.len() < MAX_FILE_INFO {
            self.f5.file_info.push(info);
        }
        Some(NotTcp {
            class: FrameClass::CaptureInfo,
            reason: "F5 fileinfo pseudo-packet: capture information, not traffic",
        })
    }

    /// The F5 BIG-IP trailer of the frame decoded last, if it had one. Only its parsed
    /// fields: the trailer's bytes are never kept (they can hold TLS secrets).
    // Inlined: the pipeline asks after every frame, and on all but BIG-IP captures the answer
    // is a `None` the caller can test without a call or a copy.
    #[inline]
    pub fn f5_trailer(&self) -> Option<F5Trailer> {
        self.f5_trailer
    }

    /// The text of a virtual server name or RST cause of [`Decoder::f5_trailer`]
    /// (capture-derived: escape it before showing it).
    pub fn f5_name(&self, id: F5NameId) -> &str {
        self.f5.name(id)
    }

    /// What the F5 trailers and fileinfo packets decoded so far showed.
    pub fn f5(&self) -> &F5Summary {
        &self.f5
    }

    /// Every frame decoded so far, counted.
    pub fn accounting(&self) -> Accounting {
        Accounting {
            reassembly: self.defragmenter.counters(),
            ..self.accounting
        }
    }

    /// Fragmented datagrams waiting for more fragments.
    pub fn pending_datagrams(&self) -> usize {
        self.defragmenter.pending()
    }

    /// The input has ended: datagrams still waiting for fragments are given up (counted as
    /// expired). Returns the final accounting.
    pub fn finish(&mut self) -> Accounting {
        self.defragmenter.finish();
        self.accounting()
    }
}
