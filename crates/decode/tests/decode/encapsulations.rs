//! Tunnels, tags, labels and the extra link types on hand-built frames: each reaches the
//! inner segment with its vantage, and what cannot be read is counted, not guessed.

use super::*;
use twsleuth_decode::{
    Accounting, DefragLimits, FrameRef, MAX_NESTED_HEADERS, TunnelKind, Vantage,
};

const OUTER_SRC: [u8; 4] = [192, 0, 2, 1];
const OUTER_DST: [u8; 4] = [192, 0, 2, 2];

/// An IPv4 header (no options, checksum 0: the decoder does not check it) for `payload`.
fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x45, 0];
    out.extend_from_slice(&(20 + payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, protocol, 0, 0]);
    out.extend_from_slice(&OUTER_SRC);
    out.extend_from_slice(&OUTER_DST);
    out.extend_from_slice(payload);
    out
}

fn ipv6(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x60, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&[next_header, 64]);
    out.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    out.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    out.extend_from_slice(payload);
    out
}

fn udp(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = 50000u16.to_be_bytes().to_vec();
    out.extend_from_slice(&dst_port.to_be_bytes());
    out.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    out
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// An Ethernet frame carrying an IPv4 packet whose payload is `payload` (protocol given).
fn over_ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    ethernet(0x0800, &[], &ipv4(protocol, payload))
}

/// Decodes with a fresh [`Decoder`]: the result and its accounting.
fn decode_counted(
    link_type: LinkType,
    data: &[u8],
) -> (Result<TcpSegment, FrameClass>, Accounting) {
    let mut decoder = Decoder::default();
    let result = decoder
        .decode(&frame(link_type, data))
        .map_err(|not_tcp| not_tcp.class);
    let accounting = decoder.finish();
    assert!(accounting.is_closed());
    (result, accounting)
}

fn vantage(tunnel: TunnelKind, tunnel_id: u32) -> Vantage {
    Vantage {
        tunnel,
        tunnel_id,
        ..Vantage::default()
    }
}

fn syn_seen_through(link_type: LinkType, data: &[u8]) -> (TcpSegment, Accounting) {
    let (result, accounting) = decode_counted(link_type, data);
    let segment = result.unwrap_or_else(|class| panic!("not TCP but {class:?}: {data:02x?}"));
    assert_eq!(segment.seq, 0x1234_5678, "{data:02x?}");
    assert_eq!(segment.options.mss, Some(1460));
    (segment, accounting)
}

#[test]
fn gre_with_every_optional_field_reaches_the_inner_segment() {
    let v4 = ipv4_syn();
    let v6 = ipv6_syn();
    let inner_frame = ethernet(0x0800, &[0x8100], &v4);
    let mpls = concat(&[&[0, 0x06, 0x41, 64], &v4]); // label 100, bottom of stack
    let cases: [(&[u8], &[u8], u32); 7] = [
        // flags, protocol | optional fields ; payload ; key
        (&[0x00, 0x00, 0x08, 0x00], &v4, 0),
        (&[0x00, 0x00, 0x86, 0xdd], &v6, 0),
        // C, K, S: checksum + reserved1, key 7, sequence number.
        (
            &[
                0xb0, 0x00, 0x08, 0x00, 0xab, 0xcd, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9,
            ],
            &v4,
            7,
        ),
        // R (RFC 1701 routing): offset field, one source route entry of 4 bytes, the end.
        (
            &[
                0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0x02, 0, 4, 10, 0, 0, 1, 0, 0, 0, 0,
            ],
            &v4,
            0,
        ),
        (&[0x20, 0x00, 0x65, 0x58, 0, 0, 0, 42], &inner_frame, 42),
        (&[0x00, 0x00, 0x88, 0x47], &mpls, 100),
        (
            &[0x20, 0x00, 0x08, 0x00, 0xff, 0xff, 0xff, 0xff],
            &v4,
            u32::MAX,
        ),
    ];
    for (header, payload, key) in cases {
        let data = over_ipv4(47, &concat(&[header, payload]));
        let (result, accounting) = decode_counted(LinkType::ETHERNET, &data);
        let segment = result.unwrap_or_else(|class| panic!("{header:02x?}: {class:?}"));
        let expected_tunnel = if payload == mpls.as_slice() {
            vantage(TunnelKind::Mpls, key)
        } else {
            vantage(TunnelKind::Gre, key)
        };
        assert_eq!(
            segment.vantage.tunnel, expected_tunnel.tunnel,
            "{header:02x?}"
        );
        assert_eq!(segment.vantage.tunnel_id, expected_tunnel.tunnel_id);
        assert_eq!(accounting.encapsulations.gre, 1);
    }
}

#[test]
fn gre_payloads_twsleuth_does_not_read_are_counted_never_guessed() {
    let arp = [0u8; 28];
    for header in [
        &[0x00, 0x00, 0x08, 0x06][..],                     // ARP in GRE
        &[0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0], // PPTP enhanced GRE (version 1)
    ] {
        let data = over_ipv4(47, &concat(&[header, &arp]));
        let (result, accounting) = decode_counted(LinkType::ETHERNET, &data);
        assert_eq!(result.unwrap_err(), FrameClass::OtherIp);
        assert_eq!(accounting.unknown_encapsulation, 1, "{header:02x?}");
        assert_eq!(accounting.encapsulations.gre, 1);
    }
}

#[test]
fn erspan_types_one_two_and_three_reach_the_mirrored_frame() {
    let mirrored = ethernet(0x0800, &[0x8100], &ipv4_syn());
    let type_2 = [0x10, 0x00, 0x00, 0x2a, 0, 0, 0, 0x07]; // session 42
    let type_3 = [0x20, 0x00, 0x00, 0x4d, 0, 0, 0, 1, 0, 0, 0x00, 0x50]; // session 77
    let type_3_subheader = [
        0x20, 0x00, 0x00, 0x4d, 0, 0, 0, 1, 0, 0, 0x00, 0x51, 0x1c, 0, 0x01, 0x23, 0, 0, 0, 9,
    ];
    let type_3_ip = [0x20, 0x00, 0x00, 0x4d, 0, 0, 0, 1, 0, 0, 0x08, 0x50]; // FT 2: IP
    let ip = ipv4_syn();
    /// GRE header, ERSPAN header, payload, session id.
    type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], u32);
    let cases: [Case; 5] = [
        (&[0x00, 0x00, 0x88, 0xbe], &[], &mirrored, 0),
        (
            &[0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1],
            &type_2,
            &mirrored,
            42,
        ),
        (
            &[0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1],
            &type_3,
            &mirrored,
            77,
        ),
        (
            &[0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 2],
            &type_3_subheader,
            &mirrored,
            77,
        ),
        (&[0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 3], &type_3_ip, &ip, 77),
    ];
    for (gre, erspan, payload, session) in cases {
        let data = over_ipv4(47, &concat(&[gre, erspan, payload]));
        let (segment, accounting) = syn_seen_through(LinkType::ETHERNET, &data);
        assert_eq!(segment.vantage.tunnel, TunnelKind::Erspan);
        assert_eq!(segment.vantage.tunnel_id, session);
        assert_eq!(
            (
                accounting.encapsulations.gre,
                accounting.encapsulations.erspan
            ),
            (1, 1)
        );
    }
    // An ERSPAN version beyond III is counted, not read.
    let data = over_ipv4(
        47,
        &concat(&[
            &[0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1],
            &[0x30, 0, 0, 0, 0, 0, 0, 0],
            &mirrored,
        ]),
    );
    let (result, accounting) = decode_counted(LinkType::ETHERNET, &data);
    assert_eq!(result.unwrap_err(), FrameClass::OtherIp);
    assert_eq!(accounting.unknown_encapsulation, 1);
}

#[test]
fn udp_tunnels_reach_the_inner_segment_with_their_ids() {
    let inner_frame = ethernet(0x0800, &[], &ipv4_syn());
    let vxlan = concat(&[&[0x08, 0, 0, 0, 0x00, 0x13, 0x89, 0], &inner_frame]);
    // Geneve: option length 2 (8 bytes), Ethernet, VNI 0xabcd, one option TLV.
    let geneve = concat(&[
        &[0x02, 0x00, 0x65, 0x58, 0x00, 0xab, 0xcd, 0x00],
        &[0x01, 0x03, 0x01, 0x01, 0xde, 0xad, 0xbe, 0xef],
        &inner_frame,
    ]);
    let geneve_v6 = concat(&[&[0x00, 0x00, 0x86, 0xdd, 0, 0, 7, 0], &ipv6_syn()]);
    // GTP-U G-PDU with E set: sequence, N-PDU, next 0x85, one 4-byte extension, then next 0x40
    // (UDP port extension, 4 bytes) and the end.
    let v4 = ipv4_syn();
    let gtp_body_len = (8 + 4 + v4.len()) as u16;
    let gtp = concat(&[
        &[0x34, 0xff],
        &gtp_body_len.to_be_bytes(),
        &[0, 0, 0x10, 0],
        &[0, 0, 0, 0x85],
        &[1, 0x10, 9, 0x40],
        &[1, 0x12, 0x34, 0],
        &v4,
    ]);
    let gtp_plain = concat(&[&[0x30, 0xff, 0, 60, 0, 0, 0x20, 0], &v4]);
    let cases: [(u16, &[u8], TunnelKind, u32, u16); 5] = [
        (4789, &vxlan, TunnelKind::Vxlan, 5001, 80),
        (6081, &geneve, TunnelKind::Geneve, 0xabcd, 80),
        (6081, &geneve_v6, TunnelKind::Geneve, 0x7, 443),
        (2152, &gtp, TunnelKind::GtpU, 0x1000, 80),
        (2152, &gtp_plain, TunnelKind::GtpU, 0x2000, 80),
    ];
    for (port, body, kind, id, inner_port) in cases {
        let data = over_ipv4(17, &udp(port, body));
        let (result, accounting) = decode_counted(LinkType::ETHERNET, &data);
        let segment = result.unwrap_or_else(|class| panic!("{kind:?}: {class:?}"));
        assert_eq!(segment.dst_port, inner_port);
        assert_eq!(segment.vantage, vantage(kind, id), "{kind:?}");
        let e = accounting.encapsulations;
        assert_eq!(e.vxlan + e.geneve + e.gtp_u, 1);
        // The same over IPv6.
        let data = ethernet(0x86dd, &[], &ipv6(17, &udp(port, body)));
        assert_eq!(
            decoded(LinkType::ETHERNET, &data).vantage,
            vantage(kind, id)
        );
    }
}

#[test]
fn udp_on_a_tunnel_port_that_is_not_that_tunnel_is_counted_as_unknown() {
    let inner_frame = ethernet(0x0800, &[], &ipv4_syn());
    let cases: [(u16, Vec<u8>, u64); 6] = [
        // VXLAN without the I flag.
        (
            4789,
            concat(&[&[0, 0, 0, 0, 0, 0x13, 0x89, 0], &inner_frame]),
            1,
        ),
        // Geneve version 1.
        (
            6081,
            concat(&[&[0x40, 0, 0x65, 0x58, 0, 0, 1, 0], &inner_frame]),
            1,
        ),
        // Geneve carrying a protocol type it does not read (ARP).
        (
            6081,
            concat(&[&[0x00, 0, 0x08, 0x06, 0, 0, 1, 0], &[0; 28]]),
            1,
        ),
        // GTP version 2 (GTPv2-C is not GTP-U).
        (2152, concat(&[&[0x48, 0x20, 0, 8, 0, 0, 0, 1], &[0; 8]]), 1),
        // A GTP-U payload that is neither IPv4 nor IPv6.
        (
            2152,
            concat(&[&[0x30, 0xff, 0, 4, 0, 0, 0, 1], &[0x81, 0, 0, 0]]),
            1,
        ),
        // A GTP-U echo request: GTP-U, but no user packet; not unknown.
        (2152, vec![0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0], 0),
    ];
    for (port, body, unknown) in cases {
        let data = over_ipv4(17, &udp(port, &body));
        let (result, accounting) = decode_counted(LinkType::ETHERNET, &data);
        assert_eq!(result.unwrap_err(), FrameClass::OtherIp, "{body:02x?}");
        assert_eq!(accounting.unknown_encapsulation, unknown, "{body:02x?}");
    }
    // Plain UDP is other IP, whatever its source port.
    let dns = over_ipv4(17, &udp(53, b"query"));
    let (result, accounting) = decode_counted(LinkType::ETHERNET, &dns);
    assert_eq!(result.unwrap_err(), FrameClass::OtherIp);
    assert_eq!(accounting.unknown_encapsulation, 0);
}

#[test]
fn a_snaplen_cut_inside_a_tunnel_header_is_truncated_not_unknown() {
    let inner_frame = ethernet(0x0800, &[], &ipv4_syn());
    let data = over_ipv4(
        17,
        &udp(
            4789,
            &concat(&[&[0x08, 0, 0, 0, 0, 0x13, 0x89, 0], &inner_frame]),
        ),
    );
    for cut in [
        14 + 20 + 2,
        14 + 20 + 8 + 4,
        14 + 20 + 8 + 8 + 10,
        14 + 20 + 8 + 8 + 14 + 30,
    ] {
        let mut f = frame(LinkType::ETHERNET, &data[..cut]);
        f.orig_len = data.len() as u32;
        let mut decoder = Decoder::default();
        assert_eq!(
            decoder.decode(&f).unwrap_err().class,
            FrameClass::Truncated,
            "cut at {cut}"
        );
        assert_eq!(decoder.accounting().unknown_encapsulation, 0);
    }
}

#[test]
fn mpls_stacks_are_read_by_the_nibble_after_the_bottom_label() {
    let entry =
        |label: u32, bottom: bool| (label << 12 | u32::from(bottom) << 8 | 64).to_be_bytes();
    let v4 = ipv4_syn();
    let v6 = ipv6_syn();
    let pw = ethernet(0x0800, &[], &ipv4_syn());
    let three = concat(&[&entry(16, false), &entry(17, false), &entry(300, true), &v4]);
    let ipv6_payload = concat(&[&entry(2, true), &v6]);
    let pseudowire = concat(&[&entry(99, true), &[0, 0, 0, 0], &pw]);
    for (stack, label, port) in [
        (&three, 300, 80),
        (&ipv6_payload, 2, 443),
        (&pseudowire, 99, 80),
    ] {
        let (result, accounting) =
            decode_counted(LinkType::ETHERNET, &ethernet(0x8847, &[], stack));
        let segment = result.unwrap();
        assert_eq!(segment.dst_port, port);
        assert_eq!(segment.vantage, vantage(TunnelKind::Mpls, label));
        assert_eq!(accounting.encapsulations.mpls, 1);
    }
    // First nibble 1 (a G-ACh, RFC 5586) or anything else: unknown, and not IP on Ethernet.
    let ach = concat(&[&entry(13, true), &[0x10, 0, 0, 0x21], &v4]);
    let (result, accounting) = decode_counted(LinkType::ETHERNET, &ethernet(0x8847, &[], &ach));
    assert_eq!(result.unwrap_err(), FrameClass::NonIp);
    assert_eq!(accounting.unknown_encapsulation, 1);
}

#[test]
fn pppoe_sessions_carry_ipv4_and_ipv6_and_control_traffic_is_not_ip() {
    let session = |protocol: &[u8], payload: &[u8]| {
        let len = (protocol.len() + payload.len()) as u16;
        let mut out = vec![0x11, 0x00, 0x0b, 0xad];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(protocol);
        out.extend_from_slice(payload);
        ethernet(0x8864, &[0x8100], &out)
    };
    let v4 = session(&[0x00, 0x21], &ipv4_syn());
    let v6 = session(&[0x00, 0x57], &ipv6_syn());
    // Protocol field compression (RFC 1661 section 6.5): 0x21 alone.
    let compressed = session(&[0x21], &ipv4_syn());
    for (data, port) in [(&v4, 80), (&v6, 443), (&compressed, 80)] {
        let (result, accounting) = decode_counted(LinkType::ETHERNET, data);
        let segment = result.unwrap();
        assert_eq!(segment.dst_port, port);
        assert_eq!(segment.vantage.tunnel, TunnelKind::Pppoe);
        assert_eq!(segment.vantage.tunnel_id, 0x0bad);
        assert_eq!(segment.vantage.outer_vlan, 100);
        assert_eq!(accounting.encapsulations.pppoe, 1);
    }
    let lcp = session(&[0xc0, 0x21], &[9, 1, 0, 8, 1, 2, 3, 4]);
    assert_eq!(class(LinkType::ETHERNET, &lcp, 0), FrameClass::NonIp);
    // PPPoE discovery (0x8863) is not IP either.
    let padi = ethernet(0x8863, &[], &[0x11, 0x09, 0, 0, 0, 0]);
    assert_eq!(class(LinkType::ETHERNET, &padi, 0), FrameClass::NonIp);
}

#[test]
fn ip_in_ip_every_way_round() {
    let v4 = ipv4_syn();
    let v6 = ipv6_syn();
    let cases = [
        (ethernet(0x0800, &[], &ipv4(4, &v4)), 80),
        (ethernet(0x0800, &[], &ipv4(41, &v6)), 443),
        (ethernet(0x86dd, &[], &ipv6(4, &v4)), 80),
        (ethernet(0x86dd, &[], &ipv6(41, &v6)), 443),
        // Two levels: IPv4 in IPv6 in IPv4.
        (ethernet(0x0800, &[], &ipv4(41, &ipv6(4, &v4))), 80),
    ];
    for (data, port) in cases {
        let (result, accounting) = decode_counted(LinkType::ETHERNET, &data);
        let segment = result.unwrap();
        assert_eq!(segment.dst_port, port);
        assert_eq!(segment.vantage, vantage(TunnelKind::IpInIp, 0));
        assert_eq!(accounting.encapsulations.ip_in_ip, 1);
    }
}

#[test]
fn vlan_tags_give_the_outer_and_inner_vlan_ids() {
    let ip = ipv4_syn();
    let tagged = |tags: &[(u16, u16)]| {
        let mut out = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        for &(tpid, tci) in tags {
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&tci.to_be_bytes());
        }
        out.extend_from_slice(&0x0800u16.to_be_bytes());
        out.extend_from_slice(&ip);
        out
    };
    // Priority bits (0xe000) are not part of the VLAN id.
    let one = decoded(LinkType::ETHERNET, &tagged(&[(0x8100, 0xe000 | 100)]));
    assert_eq!((one.vantage.outer_vlan, one.vantage.inner_vlan), (100, 0));
    let qinq = decoded(LinkType::ETHERNET, &tagged(&[(0x88a8, 200), (0x8100, 100)]));
    assert_eq!(
        (qinq.vantage.outer_vlan, qinq.vantage.inner_vlan),
        (200, 100)
    );
    let three = tagged(&[(0x88a8, 300), (0x8100, 200), (0x8100, 100)]);
    let (result, accounting) = decode_counted(LinkType::ETHERNET, &three);
    let segment = result.unwrap();
    assert_eq!(
        (segment.vantage.outer_vlan, segment.vantage.inner_vlan),
        (300, 100)
    );
    assert_eq!(accounting.encapsulations.vlan, 1);
}

#[test]
fn nesting_deeper_than_the_bound_is_malformed_and_counted() {
    let ip = ipv4_syn();
    let tags = vec![0x8100u16; usize::from(MAX_NESTED_HEADERS)];
    assert_eq!(
        class(LinkType::ETHERNET, &ethernet(0x0800, &tags, &ip), 0),
        FrameClass::Tcp
    );
    let too_many = vec![0x8100u16; usize::from(MAX_NESTED_HEADERS) + 1];
    let (result, accounting) =
        decode_counted(LinkType::ETHERNET, &ethernet(0x0800, &too_many, &ip));
    assert_eq!(result.unwrap_err(), FrameClass::Malformed);
    assert_eq!(accounting.nesting_too_deep, 1);
    // IPv4 in IPv4, 20 times: bounded the same way.
    let mut packet = ip.clone();
    for _ in 0..20 {
        packet = ipv4(4, &packet);
    }
    let (result, accounting) = decode_counted(LinkType::IPV4, &packet);
    assert_eq!(result.unwrap_err(), FrameClass::Malformed);
    assert_eq!(accounting.nesting_too_deep, 1);
}

#[test]
fn the_serial_and_legacy_link_types_reach_the_segment() {
    let v4 = ipv4_syn();
    let v6 = ipv6_syn();
    let ppp_framed = concat(&[&[0xff, 0x03, 0x00, 0x21], &v4]);
    let ppp_bare = concat(&[&[0x00, 0x57], &v6]);
    let ppp_compressed = concat(&[&[0x21], &v4]);
    let cisco = concat(&[&[0x0f, 0x00, 0x08, 0x00], &v4]);
    let cisco_v6 = concat(&[&[0x8f, 0x00, 0x86, 0xdd], &v6]);
    let fddi = concat(&[
        &[0x50, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1],
        &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00],
        &v4,
    ]);
    let loop_header = concat(&[&2u32.to_be_bytes(), &v4]);
    // IEEE 802.3 with a length field, then LLC/SNAP, on Ethernet.
    let mut snap = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    snap.extend_from_slice(&((8 + v4.len()) as u16).to_be_bytes());
    snap.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    snap.extend_from_slice(&v4);
    let cases: [(LinkType, &[u8], u16); 12] = [
        (LinkType::PPP, &ppp_framed, 80),
        (LinkType::PPP, &ppp_bare, 443),
        (LinkType::PPP, &ppp_compressed, 80),
        (LinkType::PPP_HDLC, &ppp_framed, 80),
        (LinkType::PPP_HDLC, &cisco, 80),
        (LinkType::C_HDLC, &cisco, 80),
        (LinkType::C_HDLC, &cisco_v6, 443),
        (LinkType::FDDI, &fddi, 80),
        (LinkType::RAW_DLT_12, &v4, 80),
        (LinkType::RAW_DLT_12, &loop_header, 80),
        (LinkType::RAW_DLT_14, &v6, 443),
        (LinkType::ETHERNET, &snap, 80),
    ];
    for (link_type, data, port) in cases {
        assert_eq!(decoded(link_type, data).dst_port, port, "{link_type}");
        assert!(link_type.name().is_some());
    }
    // SLARP keepalives, LCP, FDDI station management frames, plain LLC: not IP.
    let slarp = [
        0x8f, 0x00, 0x80, 0x35, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff,
    ];
    let lcp = [0xff, 0x03, 0xc0, 0x21, 9, 1, 0, 8, 1, 2, 3, 4];
    let smt = [0x41, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0, 0, 0];
    let stp = [
        0x50, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x42, 0x42, 0x03, 0, 0,
    ];
    for (link_type, data) in [
        (LinkType::C_HDLC, &slarp[..]),
        (LinkType::PPP, &lcp[..]),
        (LinkType::FDDI, &smt[..]),
        (LinkType::FDDI, &stp[..]),
    ] {
        assert_eq!(class(link_type, data, 0), FrameClass::NonIp, "{link_type}");
    }
}

#[test]
fn undecoded_link_types_are_counted_by_link_type() {
    let mut decoder = Decoder::default();
    for link_type in [105, 105, 147, 105] {
        let err = decoder
            .decode(&frame(LinkType(link_type), &[0; 40]))
            .unwrap_err();
        assert_eq!(err.class, FrameClass::NonIp);
    }
    decoder.decode(&frame(LinkType::IPV4, &ipv4_syn())).unwrap();
    let accounting = decoder.finish();
    let counts: Vec<(u16, u64)> = accounting
        .undecoded_link_types
        .iter()
        .map(|(link_type, frames)| (link_type.0, frames))
        .collect();
    assert_eq!(counts, [(105, 3), (147, 1)]);
    assert_eq!(accounting.non_ip, 4);
    assert_eq!(accounting.tcp_segments, 1);
}

/// `packet` (IPv4, no options) as fragments whose payloads end at `splits`.
fn ipv4_fragments(packet: &[u8], splits: &[usize], id: u16) -> Vec<Vec<u8>> {
    let payload = &packet[20..];
    let mut bounds = vec![0];
    bounds.extend_from_slice(splits);
    bounds.push(payload.len());
    bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let mut header = packet[..20].to_vec();
            let more = i + 2 < bounds.len();
            header[2..4].copy_from_slice(&((20 + w[1] - w[0]) as u16).to_be_bytes());
            header[4..6].copy_from_slice(&id.to_be_bytes());
            let field = (w[0] / 8) as u16 | if more { 0x2000 } else { 0 };
            header[6..8].copy_from_slice(&field.to_be_bytes());
            concat(&[&header, &payload[w[0]..w[1]]])
        })
        .collect()
}

#[test]
fn ipv4_fragments_split_inside_the_tcp_header_are_reassembled_by_the_decoder() {
    let syn = ipv4_syn();
    let fragments = ipv4_fragments(&syn, &[8, 24], 0x4242);
    let mut decoder = Decoder::default();
    let mut results = Vec::new();
    for (i, fragment) in fragments.iter().enumerate() {
        let f = Frame {
            number: i as u64 + 1,
            ts_ns: 1000 + i as i64,
            ..frame(LinkType::IPV4, fragment)
        };
        results.push(decoder.decode(&f));
        // Without state, none of them is TCP, and none is malformed.
        assert_eq!(decode(&f).unwrap_err().class, FrameClass::Fragment);
    }
    assert!(
        results[..2]
            .iter()
            .all(|r| r.unwrap_err().class == FrameClass::Fragment)
    );
    let segment = results[2].unwrap();
    let whole = decoded(LinkType::IPV4, &syn);
    let expected = TcpSegment {
        frame: FrameRef {
            number: 3,
            ..whole.frame
        },
        ts_ns: 1002,
        ip_id: 0x4242,
        ..whole
    };
    assert_eq!(segment, expected);
    let accounting = decoder.finish();
    assert_eq!((accounting.tcp_segments, accounting.fragments), (1, 2));
    assert_eq!(accounting.reassembly.reassembled, 1);
}

#[test]
fn ipv6_fragments_are_reassembled_when_tcp_follows_the_fragment_header() {
    let syn = ipv6_syn();
    let (fixed, tcp) = syn.split_at(40);
    let fragment = |offset: usize, more: bool, bytes: &[u8]| {
        let mut header = fixed.to_vec();
        header[4..6].copy_from_slice(&((8 + bytes.len()) as u16).to_be_bytes());
        header[6] = 44;
        let field = (offset as u16) | u16::from(more);
        concat(&[
            &header,
            &[6, 0],
            &field.to_be_bytes(),
            &[0, 0, 0x77, 0x77],
            bytes,
        ])
    };
    let first = fragment(0, true, &tcp[..16]);
    let last = fragment(16, false, &tcp[16..]);
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder
            .decode(&frame(LinkType::IPV6, &first))
            .unwrap_err()
            .class,
        FrameClass::Fragment
    );
    let segment = decoder.decode(&frame(LinkType::IPV6, &last)).unwrap();
    assert_eq!(segment.dst_port, 443);
    assert_eq!(segment.seq, 1);
    // An atomic fragment (offset 0, M 0: RFC 6946) is simply the packet.
    let atomic = fragment(0, false, tcp);
    assert_eq!(decoded(LinkType::IPV6, &atomic).dst_port, 443);
}

#[test]
fn fragments_are_kept_apart_by_vantage() {
    // The same datagram (addresses, id) in two VXLAN segments: two datagrams.
    let syn = ipv4_syn();
    let fragments = ipv4_fragments(&syn, &[8], 7);
    let in_vni = |vni: u8, packet: &[u8]| {
        let inner = ethernet(0x0800, &[], packet);
        over_ipv4(
            17,
            &udp(4789, &concat(&[&[0x08, 0, 0, 0, 0, 0, vni, 0], &inner])),
        )
    };
    let mut decoder = Decoder::default();
    let frames = [
        in_vni(1, &fragments[0]),
        in_vni(2, &fragments[0]),
        in_vni(1, &fragments[1]),
        in_vni(2, &fragments[1]),
    ];
    let results: Vec<_> = frames
        .iter()
        .map(|data| decoder.decode(&frame(LinkType::ETHERNET, data)))
        .collect();
    assert!(results[0].is_err() && results[1].is_err());
    assert_eq!(results[2].unwrap().vantage.tunnel_id, 1);
    assert_eq!(results[3].unwrap().vantage.tunnel_id, 2);
}

#[test]
fn the_first_fragment_of_a_tunnel_packet_is_decoded_from_its_inner_headers() {
    // GRE carrying a 1000-byte data segment, the outer packet fragmented after 200 bytes.
    let inner = ipv4_data(1000);
    let outer = ipv4(47, &concat(&[&[0, 0, 0x08, 0x00], &inner]));
    let fragments = ipv4_fragments(&outer, &[200], 99);
    let mut decoder = Decoder::default();
    let segment = decoder
        .decode(&frame(LinkType::IPV4, &fragments[0]))
        .unwrap();
    assert_eq!(segment.payload_len, 1000);
    assert_eq!(
        decoder
            .decode(&frame(LinkType::IPV4, &fragments[1]))
            .unwrap_err()
            .class,
        FrameClass::Fragment
    );
    let accounting = decoder.finish();
    // Not a truncated frame: the rest is in the next fragment.
    assert_eq!(accounting.tcp_from_truncated_frames, 0);
    assert_eq!(accounting.reassembly.expired, 0);
}

#[test]
fn fragments_that_never_complete_expire_and_the_cap_holds() {
    let syn = ipv4_syn();
    let limits = DefragLimits {
        max_pending_datagrams: 3,
        timeout_ns: 30_000_000_000,
    };
    let mut decoder = Decoder::new(limits);
    for id in 0..5u16 {
        let fragments = ipv4_fragments(&syn, &[8], id);
        let f = Frame {
            ts_ns: 0,
            ..frame(LinkType::IPV4, &fragments[0])
        };
        assert_eq!(decoder.decode(&f).unwrap_err().class, FrameClass::Fragment);
    }
    assert_eq!(decoder.pending_datagrams(), 3);
    assert_eq!(decoder.accounting().reassembly.dropped_over_cap, 2);
    // 31 s later the three have expired; a new datagram fits and completes.
    let fragments = ipv4_fragments(&syn, &[8], 100);
    for (i, fragment) in fragments.iter().enumerate() {
        let f = Frame {
            ts_ns: 31_000_000_000,
            ..frame(LinkType::IPV4, fragment)
        };
        assert_eq!(decoder.decode(&f).is_ok(), i == 1);
    }
    let accounting = decoder.finish();
    assert_eq!(accounting.reassembly.expired, 3);
    assert_eq!(accounting.reassembly.reassembled, 1);
    assert!(accounting.is_closed());
}
