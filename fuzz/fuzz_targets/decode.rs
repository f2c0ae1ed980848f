//! Frame decoder on arbitrary frames. Input: one byte choosing the link type, four bytes
//! (little-endian i32) added to the frame's length to make `orig_len`, then the frame.
//! `decode` must never panic; its answer must be consistent with the frame; a snaplen cut of
//! the same frame must decode to the same headers or count as truncated/malformed. The
//! stateful `Decoder` (which also follows fragments) must count the frame once and, on a lone
//! frame, give no segment that `decode` does not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twsleuth_decode::{Accounting, DefragLimits, Decoder, FrameClass, NotTcp, TcpSegment, decode};
use twsleuth_reader::{Frame, LinkType};

// Must match DECODE_LINK_TYPES in fuzz/make_seeds.py (seeds name their link type by index).
const LINK_TYPES: [LinkType; 15] = [
    LinkType::NULL,
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL2,
    // Not decoded by twsleuth (LINKTYPE_IEEE802_11).
    LinkType(105),
    LinkType::PPP,
    LinkType::FDDI,
    LinkType::RAW_DLT_12,
    LinkType::RAW_DLT_14,
    LinkType::PPP_HDLC,
    LinkType::C_HDLC,
];

fn frame<'a>(link_type: LinkType, orig_len: u32, data: &'a [u8]) -> Frame<'a> {
    Frame {
        file_index: 3,
        number: 42,
        ts_ns: 1_700_000_000_123_456_789,
        link_type,
        orig_len,
        data,
        comment: None,
        section_comment: None,
    }
}

/// Checks what holds for any answer of `decode` on `f`.
fn check(f: &Frame<'_>, decoded: &Result<TcpSegment, NotTcp>) {
    let mut accounting = Accounting::default();
    match decoded {
        Ok(seg) => {
            accounting.count(FrameClass::Tcp);
            assert!(f.link_type.name().is_some(), "TCP from an undecoded link type");
            assert_eq!(seg.frame.file_index, f.file_index);
            assert_eq!(seg.frame.number, f.number);
            assert_eq!(seg.ts_ns, f.ts_ns);
            assert_eq!(seg.src.is_ipv4(), seg.dst.is_ipv4(), "mixed address families");
            // From the IP length fields (at most 65535) or, when they are 0 (TSO, jumbogram),
            // from the captured bytes.
            let limit = (u16::MAX as usize).max(f.data.len());
            assert!(
                (seg.payload_len as usize) <= limit,
                "payload_len {} beyond {limit}",
                seg.payload_len
            );
        }
        Err(not_tcp) => {
            accounting.count(not_tcp.class);
            assert_ne!(not_tcp.class, FrameClass::Tcp, "NotTcp with class Tcp");
            assert!(!not_tcp.reason.is_empty());
            if not_tcp.class == FrameClass::Truncated {
                assert!(
                    f.data.len() < f.orig_len as usize,
                    "truncated although nothing was cut ({} of {} bytes): {}",
                    f.data.len(),
                    f.orig_len,
                    not_tcp.reason
                );
            }
            if f.link_type.name().is_none() {
                assert_eq!(not_tcp.class, FrameClass::NonIp);
            }
        }
    }
    assert!(accounting.is_closed());
    assert_eq!(accounting.frames, 1);
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 5 {
        return;
    }
    let link_type = LINK_TYPES[usize::from(input[0]) % LINK_TYPES.len()];
    let delta = i32::from_le_bytes([input[1], input[2], input[3], input[4]]);
    let data = &input[5..];
    let orig_len = (data.len() as i64 + i64::from(delta)).clamp(0, i64::from(u32::MAX)) as u32;
    let f = frame(link_type, orig_len, data);
    let decoded = decode(&f);
    check(&f, &decoded);
    assert_eq!(decode(&f), decoded, "decode is not deterministic");

    // The stateful decoder on the same lone frame: one frame counted, and a segment only where
    // decode gives the same one (a lone frame completes no fragmented datagram).
    let mut decoder = Decoder::new(DefragLimits {
        max_pending_datagrams: 2,
        timeout_ns: 1_000_000_000,
    });
    let stateful = decoder.decode(&f);
    check(&f, &stateful);
    // An F5 trailer is read only after the IP packet of an Ethernet frame captured whole, and
    // its names resolve to text that came from the frame.
    if let Some(trailer) = decoder.f5_trailer() {
        assert_eq!(link_type, LinkType::ETHERNET);
        assert!(data.len() >= orig_len as usize);
        for id in trailer.virtual_server.into_iter().chain(trailer.rst_cause) {
            assert!(decoder.f5_name(id).chars().count() <= data.len());
        }
    }
    let accounting = decoder.finish();
    assert!(accounting.bytes_after_ip.frames() <= 1);
    assert_eq!(
        accounting.capture_info,
        decoder.f5().file_info.len() as u64,
        "a fileinfo frame counted without its fields"
    );
    assert!(accounting.is_closed());
    assert_eq!(accounting.frames, 1);
    assert!(accounting.reassembly.expired <= 1);
    if let Ok(segment) = stateful {
        assert_eq!(decoded, Ok(segment), "the Decoder found a segment decode did not");
    }

    // The same frame cut by a snaplen (captured bytes a prefix, orig_len the whole frame):
    // the headers that survive decode the same; otherwise it is truncated (or malformed).
    let Ok(full) = decoded else {
        return;
    };
    if orig_len as usize != data.len() {
        return;
    }
    // About 16 cut points over the frame, including the empty frame.
    let step = (data.len() / 16).max(1);
    for cut_at in (0..data.len()).step_by(step) {
        let cut_frame = frame(link_type, orig_len, &data[..cut_at]);
        let cut = decode(&cut_frame);
        check(&cut_frame, &cut);
        match cut {
            Ok(seg) => assert_eq!(
                (seg.src, seg.dst, seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags),
                (full.src, full.dst, full.src_port, full.dst_port, full.seq, full.ack, full.flags),
                "a snaplen cut at {cut_at} changed the decoded headers"
            ),
            Err(not_tcp) => assert!(
                matches!(not_tcp.class, FrameClass::Truncated | FrameClass::Malformed),
                "a snaplen cut at {cut_at} of a TCP frame gave {:?} ({})",
                not_tcp.class,
                not_tcp.reason
            ),
        }
    }
});
