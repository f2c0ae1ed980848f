//! The stateful decoder the capture pipeline uses: [`decode`](crate::decode) plus IP
//! reassembly, with every frame counted.

use twsleuth_reader::Frame;

use crate::accounting::{Accounting, FrameClass};
use crate::decode::{NotTcp, Trace, Walk, common_case, notes, seen};
use crate::defrag::{DefragLimits, Defragmenter};
use crate::segment::TcpSegment;

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
pub struct Decoder {
    defragmenter: Defragmenter,
    accounting: Accounting,
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
        }
    }

    /// Decodes the next frame and counts it. The caller must not count it again.
    pub fn decode(&mut self, frame: &Frame<'_>) -> Result<TcpSegment, NotTcp> {
        let mut trace = Trace::default();
        if let Some(found) = common_case(frame, &mut trace) {
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
        let decoded = walk.run();
        let trace = Trace {
            seen: walk.seen,
            notes: walk.notes,
        };
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
