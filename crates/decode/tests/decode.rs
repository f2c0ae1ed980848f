//! Decoder behaviour on frames built with etherparse's packet builder, wrapped in every
//! supported link layer and encapsulation, plus random frames (which must never panic), and on
//! the tunnel fixtures against their source captures and tshark.

#[path = "decode/encapsulations.rs"]
mod encapsulations;
#[path = "decode/f5.rs"]
mod f5;
#[path = "decode/fixtures.rs"]
mod fixtures;

use etherparse::{PacketBuilder, TcpOptionElement};
use proptest::prelude::*;
use twsleuth_decode::{Decoder, FrameClass, TcpFlags, TcpSegment, TcpTimestamps, decode};
use twsleuth_reader::{Frame, LinkType};

const CLIENT_V4: [u8; 4] = [10, 0, 0, 1];
const SERVER_V4: [u8; 4] = [10, 1, 0, 10];
const CLIENT_V6: [u8; 16] = [0xfd, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const SERVER_V6: [u8; 16] = [0xfd, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

const SYN_OPTIONS: [TcpOptionElement; 5] = [
    TcpOptionElement::MaximumSegmentSize(1460),
    TcpOptionElement::SelectiveAcknowledgementPermitted,
    TcpOptionElement::Timestamp(1000, 0),
    TcpOptionElement::Noop,
    TcpOptionElement::WindowScale(7),
];

/// An IPv4 SYN from 10.0.0.1:40000 to 10.1.0.10:80 with the usual Linux options.
fn ipv4_syn() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(CLIENT_V4, SERVER_V4, 64)
        .tcp(40000, 80, 0x1234_5678, 64240)
        .syn()
        .options(&SYN_OPTIONS)
        .unwrap()
        .write(&mut out, &[])
        .unwrap();
    out
}

/// An IPv4 data segment with `payload_len` bytes of payload.
fn ipv4_data(payload_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(SERVER_V4, CLIENT_V4, 64)
        .tcp(80, 40000, 7, 501)
        .ack(99)
        .psh()
        .write(&mut out, &vec![b'x'; payload_len])
        .unwrap();
    out
}

fn ipv6_syn() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(CLIENT_V6, SERVER_V6, 64)
        .tcp(40001, 443, 1, 64800)
        .syn()
        .write(&mut out, &[])
        .unwrap();
    out
}

fn ethernet(ethertype: u16, tags: &[u16], ip: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for &tpid in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&[0x00, 0x64]);
    }
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(ip);
    out
}

fn frame(link_type: LinkType, data: &[u8]) -> Frame<'_> {
    Frame {
        file_index: 0,
        number: 1,
        ts_ns: 5,
        link_type,
        orig_len: data.len() as u32,
        data,
        comment: None,
        section_comment: None,
    }
}

fn decoded(link_type: LinkType, data: &[u8]) -> TcpSegment {
    decode(&frame(link_type, data)).expect("a TCP segment")
}

fn class(link_type: LinkType, data: &[u8], orig_len: usize) -> FrameClass {
    let mut f = frame(link_type, data);
    f.orig_len = orig_len as u32;
    match decode(&f) {
        Ok(_) => FrameClass::Tcp,
        Err(not_tcp) => not_tcp.class,
    }
}

#[test]
fn ethernet_ipv4_syn_decodes_every_field_and_option() {
    let seg = decoded(LinkType::ETHERNET, &ethernet(0x0800, &[], &ipv4_syn()));
    assert_eq!(seg.src.to_string(), "10.0.0.1");
    assert_eq!(seg.dst.to_string(), "10.1.0.10");
    assert_eq!((seg.src_port, seg.dst_port), (40000, 80));
    assert_eq!(seg.seq, 0x1234_5678);
    assert_eq!(seg.flags, TcpFlags::SYN);
    assert_eq!(seg.window, 64240);
    assert_eq!(seg.payload_len, 0);
    assert_eq!(seg.seq_len(), 1);
    assert_eq!(seg.options.mss, Some(1460));
    assert_eq!(seg.options.window_scale, Some(7));
    assert!(seg.options.sack_permitted);
    assert_eq!(
        seg.options.timestamps,
        Some(TcpTimestamps {
            value: 1000,
            echo_reply: 0
        })
    );
    assert_eq!((seg.ts_ns, seg.frame.number), (5, 1));
}

#[test]
fn vlan_and_qinq_tags_are_followed() {
    let ip = ipv4_syn();
    for tags in [&[0x8100][..], &[0x88a8, 0x8100], &[0x9100, 0x8100, 0x8100]] {
        let seg = decoded(LinkType::ETHERNET, &ethernet(0x0800, tags, &ip));
        assert_eq!(seg.dst_port, 80, "tags {tags:x?}");
    }
}

#[test]
fn every_link_type_reaches_the_same_segment() {
    let v4 = ipv4_syn();
    let v6 = ipv6_syn();
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&v4);
    let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
    sll2.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1]);
    sll2.extend_from_slice(&v6);
    let null_le: Vec<u8> = [&2u32.to_le_bytes()[..], &v4].concat();
    // A NULL capture written on a big-endian host: the family looks byte-swapped.
    let null_swapped: Vec<u8> = [&2u32.to_be_bytes()[..], &v4].concat();
    let null_v6: Vec<u8> = [&30u32.to_le_bytes()[..], &v6].concat();
    let loop_v6: Vec<u8> = [&24u32.to_be_bytes()[..], &v6].concat();
    let cases: [(LinkType, &[u8], u16); 10] = [
        (LinkType::LINUX_SLL, &sll, 80),
        (LinkType::LINUX_SLL2, &sll2, 443),
        (LinkType::NULL, &null_le, 80),
        (LinkType::NULL, &null_swapped, 80),
        (LinkType::NULL, &null_v6, 443),
        (LinkType::LOOP, &loop_v6, 443),
        (LinkType::RAW, &v4, 80),
        (LinkType::RAW, &v6, 443),
        (LinkType::IPV4, &v4, 80),
        (LinkType::IPV6, &v6, 443),
    ];
    for (link_type, data, port) in cases {
        assert_eq!(decoded(link_type, data).dst_port, port, "{link_type}");
    }
}

#[test]
fn payload_length_comes_from_ip_not_from_an_ethernet_trailer() {
    let mut data = ethernet(0x0800, &[], &ipv4_data(100));
    data.extend_from_slice(&[0xf5; 40]);
    assert_eq!(decoded(LinkType::ETHERNET, &data).payload_len, 100);
}

#[test]
fn snaplen_cut_keeps_the_segment_while_the_tcp_header_is_whole() {
    let data = ethernet(0x0800, &[], &ipv4_data(1000));
    let cut = &data[..14 + 20 + 20 + 10];
    let mut f = frame(LinkType::ETHERNET, cut);
    f.orig_len = data.len() as u32;
    assert_eq!(decode(&f).unwrap().payload_len, 1000);
}

#[test]
fn cut_options_keep_the_segment_with_the_options_that_were_captured() {
    let data = ethernet(0x0800, &[], &ipv4_syn());
    // Base header plus MSS (4 bytes) and SACK-permitted (2): timestamps cut.
    let cut = &data[..14 + 20 + 26];
    let mut f = frame(LinkType::ETHERNET, cut);
    f.orig_len = data.len() as u32;
    let seg = decode(&f).expect("base header is whole");
    assert_eq!(seg.options.mss, Some(1460));
    assert!(seg.options.sack_permitted);
    assert_eq!(seg.options.timestamps, None);
}

#[test]
fn cut_tcp_header_is_truncated_when_snaplen_cut_it_and_malformed_otherwise() {
    let data = ethernet(0x0800, &[], &ipv4_syn());
    let cut = &data[..14 + 20 + 10];
    assert_eq!(
        class(LinkType::ETHERNET, cut, data.len()),
        FrameClass::Truncated
    );
    assert_eq!(
        class(LinkType::ETHERNET, cut, cut.len()),
        FrameClass::Malformed
    );
    let cut_in_ip = &data[..20];
    assert_eq!(
        class(LinkType::ETHERNET, cut_in_ip, data.len()),
        FrameClass::Truncated
    );
}

#[test]
fn other_protocols_and_non_ip_are_told_apart() {
    let mut udp = Vec::new();
    PacketBuilder::ipv4(CLIENT_V4, SERVER_V4, 64)
        .udp(5353, 53)
        .write(&mut udp, b"query")
        .unwrap();
    assert_eq!(
        class(LinkType::ETHERNET, &ethernet(0x0800, &[], &udp), 0),
        FrameClass::OtherIp
    );
    let arp = ethernet(0x0806, &[], &[0; 28]);
    assert_eq!(class(LinkType::ETHERNET, &arp, 0), FrameClass::NonIp);
    assert_eq!(class(LinkType(147), &arp, 0), FrameClass::NonIp);
}

#[test]
fn only_the_first_ipv4_fragment_is_read_as_tcp() {
    let mut first = ipv4_data(64);
    first[6] = 0x20; // MF set, offset 0
    assert_eq!(class(LinkType::IPV4, &first, first.len()), FrameClass::Tcp);
    let mut later = ipv4_data(64);
    later[6] = 0x00;
    later[7] = 0x08; // offset 8 × 8 bytes
    assert_eq!(
        class(LinkType::IPV4, &later, later.len()),
        FrameClass::Fragment
    );
}

#[test]
fn a_fragment_without_a_length_is_malformed_whatever_the_snaplen() {
    // Found by the decode fuzz target: with a total length of 0 (TSO's placeholder) the
    // frame's length stood in for it, so a snaplen cut made a whole TCP header "continue in
    // the next fragment".
    let mut data = ipv4_data(64);
    data[2..4].copy_from_slice(&[0, 0]);
    data[6] = 0x20; // MF
    for len in [data.len(), 36, 24] {
        assert_eq!(
            class(LinkType::IPV4, &data[..len], data.len()),
            FrameClass::Malformed,
            "{len}"
        );
    }
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let v6 = ipv6_syn();
    // Insert an 8-byte Hop-by-Hop header (next header TCP) after the fixed header.
    let mut with_ext = v6[..40].to_vec();
    with_ext[6] = 0; // next header: Hop-by-Hop
    let payload_len = u16::from_be_bytes([v6[4], v6[5]]) + 8;
    with_ext[4..6].copy_from_slice(&payload_len.to_be_bytes());
    with_ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    with_ext.extend_from_slice(&v6[40..]);
    let seg = decoded(LinkType::IPV6, &with_ext);
    assert_eq!((seg.dst_port, seg.payload_len), (443, 0));
}

#[test]
fn ip_length_beyond_an_uncut_frame_still_yields_its_segment_and_is_counted() {
    // A capture device that cut the frame and recorded the cut length as the frame's: the IP
    // header says 200 bytes, 60 are there, nothing says a snaplen cut them.
    let mut data = ipv4_data(10);
    data[2..4].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(class(LinkType::IPV4, &data, data.len()), FrameClass::Tcp);
    let mut decoder = Decoder::default();
    let seg = decoder.decode(&frame(LinkType::IPV4, &data)).unwrap();
    assert_eq!(seg.payload_len, 200 - 20 - 20);
    // A snaplen cut of the same kind: counted as truncated, not as short.
    let whole = ipv4_data(1000);
    let mut cut = frame(LinkType::IPV4, &whole[..60]);
    cut.orig_len = whole.len() as u32;
    assert_eq!(decoder.decode(&cut).unwrap().payload_len, 1000);
    let accounting = decoder.accounting();
    assert_eq!(accounting.tcp_from_truncated_frames, 2);
    assert_eq!(accounting.tcp_from_short_frames, 1);
    // When the TCP header itself is cut, the frame that was not snaplen-cut is malformed.
    assert_eq!(
        class(LinkType::IPV4, &data[..30], 30),
        FrameClass::Malformed
    );
    assert_eq!(
        class(LinkType::IPV4, &data[..30], 200),
        FrameClass::Truncated
    );
}

const LINK_TYPES: [LinkType; 15] = [
    LinkType::NULL,
    LinkType::ETHERNET,
    LinkType::PPP,
    LinkType::FDDI,
    LinkType::RAW_DLT_12,
    LinkType::RAW_DLT_14,
    LinkType::PPP_HDLC,
    LinkType::RAW,
    LinkType::C_HDLC,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL2,
    LinkType(12345),
];

/// Tunnel headers the mutations below start from, each leading to `ipv4_syn()`.
fn tunnel_frames() -> Vec<Vec<u8>> {
    let ip = ipv4_syn();
    let inner = ethernet(0x0800, &[0x8100], &ip);
    let outer = |protocol: u8, payload: &[u8]| {
        let mut out = vec![0x45, 0];
        out.extend_from_slice(&(20 + payload.len() as u16).to_be_bytes());
        out.extend_from_slice(&[
            0, 1, 0x20, 0, 64, protocol, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ]);
        out.extend_from_slice(payload);
        ethernet(0x0800, &[], &out)
    };
    let udp = |port: u16, body: &[u8]| {
        let mut out = vec![0xc3, 0x50];
        out.extend_from_slice(&port.to_be_bytes());
        out.extend_from_slice(&(8 + body.len() as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(body);
        out
    };
    let with = |header: &[u8], payload: &[u8]| [header, payload].concat();
    vec![
        outer(
            47,
            &with(&[0xb0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1], &ip),
        ),
        outer(
            47,
            &with(
                &[
                    0x10, 0, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                    0, 0, 0, 0, 0, 0,
                ],
                &inner,
            ),
        ),
        outer(17, &udp(4789, &with(&[0x08, 0, 0, 0, 0, 0, 1, 0], &inner))),
        outer(
            17,
            &udp(
                6081,
                &with(&[0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 2, 3, 1], &inner),
            ),
        ),
        outer(
            17,
            &udp(
                2152,
                &with(
                    &[0x34, 0xff, 0, 60, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 9, 0],
                    &ip,
                ),
            ),
        ),
        ethernet(0x8847, &[], &with(&[0, 1, 0, 64, 0, 2, 1, 64], &ip)),
        ethernet(0x8864, &[], &with(&[0x11, 0, 0, 1, 0, 0x3e, 0, 0x21], &ip)),
        outer(4, &ip),
    ]
}

proptest! {
    #[test]
    fn random_frames_never_panic(
        link in 0..LINK_TYPES.len(),
        data in proptest::collection::vec(any::<u8>(), 0..200),
        extra in 0u32..100,
    ) {
        let mut f = frame(LINK_TYPES[link], &data);
        f.orig_len += extra;
        if let Ok(seg) = decode(&f) {
            prop_assert!(f.data.len() >= 20);
            prop_assert!(seg.payload_len < 65536);
        }
        let mut decoder = Decoder::default();
        let stateful = decoder.decode(&f);
        prop_assert!(decoder.finish().is_closed());
        prop_assert_eq!(stateful.is_ok(), decode(&f).is_ok());
    }

    #[test]
    fn mutated_real_segments_never_panic(
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut data = ethernet(0x8100, &[0x8100], &ipv4_syn());
        let i = at.index(data.len());
        data[i] = value;
        let len = cut.index(data.len() + 1);
        let f = Frame { orig_len: 200, ..frame(LinkType::ETHERNET, &data[..len]) };
        let _ = decode(&f);
    }

    #[test]
    fn mutated_tunnel_frames_never_panic_and_cuts_are_never_unknown(
        which in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let frames = tunnel_frames();
        let whole = &frames[which.index(frames.len())];
        prop_assert!(decode(&frame(LinkType::ETHERNET, whole)).is_ok());
        let mut data = whole.clone();
        for (at, value) in &mutations {
            let i = at.index(data.len());
            data[i] = *value;
        }
        let len = cut.index(data.len() + 1);
        let f = Frame { orig_len: data.len() as u32, ..frame(LinkType::ETHERNET, &data[..len]) };
        let mut decoder = Decoder::default();
        let decoded = decoder.decode(&f);
        let accounting = decoder.finish();
        prop_assert!(accounting.is_closed());
        if mutations.is_empty() && len < data.len() {
            // A snaplen cut of a tunneled segment: the segment, or truncated; never unknown.
            prop_assert!(decoded.is_ok() || decoded.unwrap_err().class == FrameClass::Truncated);
            prop_assert_eq!(accounting.unknown_encapsulation, 0);
        }
    }
}
