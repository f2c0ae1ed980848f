//! The fixtures of fixtures/capture/tunnels (scripts/make_tunnel_fixtures.py): real lab
//! captures re-framed in tunnels and link layers decode to the same TCP segments as the
//! captures they came from, frame for frame, with the tunnel's vantage; and tshark (the oracle,
//! as in crates/cli/tests) finds TCP in the same frames.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use twsleuth_decode::{
    Accounting, Decoder, FrameClass, NotTcp, TcpFlags, TcpOptions, TcpSegment, TunnelKind, Vantage,
    decode,
};
use twsleuth_reader::CaptureReader;

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(relative)
}

/// Each frame's number and what the decoder made of it.
type Decoded = Vec<(u64, Result<TcpSegment, NotTcp>)>;

/// Every frame of a capture through one [`Decoder`], and the final accounting.
fn decode_capture(path: &Path) -> (Decoded, Accounting) {
    let mut reader = CaptureReader::open(path.to_str().unwrap(), 0).unwrap();
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    while reader.advance() {
        let frame = reader.current().unwrap();
        out.push((frame.number, decoder.decode(&frame)));
    }
    assert!(reader.damage().is_none(), "{}", path.display());
    let accounting = decoder.finish();
    assert!(accounting.is_closed(), "{}: {accounting:?}", path.display());
    assert_eq!(accounting.frames, out.len() as u64);
    (out, accounting)
}

/// What re-framing must keep of a segment: everything the flow tracker reads except the
/// vantage (and, where the IP header was rewritten, the IP id).
type Essence = (
    i64,
    (IpAddr, u16),
    (IpAddr, u16),
    u32,
    u32,
    TcpFlags,
    u16,
    u32,
    TcpOptions,
    Option<u16>,
);

fn essence(segment: &TcpSegment, keep_ip_id: bool) -> Essence {
    (
        segment.ts_ns,
        (segment.src, segment.src_port),
        (segment.dst, segment.dst_port),
        segment.seq,
        segment.ack,
        segment.flags,
        segment.window,
        segment.payload_len,
        segment.options,
        keep_ip_id.then_some(segment.ip_id),
    )
}

fn segments(decoded: &[(u64, Result<TcpSegment, NotTcp>)]) -> Vec<(u64, TcpSegment)> {
    decoded
        .iter()
        .filter_map(|(number, result)| result.as_ref().ok().map(|s| (*number, *s)))
        .collect()
}

/// Frame numbers where tshark (4.0, default preferences: IP reassembly on) shows TCP.
fn tshark_tcp_frames(path: &Path) -> Vec<u64> {
    let out = Command::new("tshark")
        .args(["-r", path.to_str().unwrap(), "-Y", "tcp", "-T", "fields"])
        .args(["-e", "frame.number"])
        .output()
        .unwrap_or_else(|e| panic!("tshark is needed by the tests (apt-get install tshark): {e}"));
    assert!(out.status.success(), "tshark failed on {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| line.trim().parse().unwrap())
        .collect()
}

const LAB: &str = "lab/accepted/server.pcap";

/// Reads one counter of an accounting.
type Counter = fn(&Accounting) -> u64;

/// A fixture made from [`LAB`] frame by frame, and what its segments must carry.
struct Wrapped {
    file: &'static str,
    /// Frames of the source left out (the 2 ARP frames on raw-IP link types): when 0, frame
    /// numbers are the source's.
    frames_left_out: u64,
    /// The vantage of a segment, from its direction (true: from the lower address).
    vantage: fn(bool) -> Vantage,
    /// The encapsulation counter every wrapped frame must be in, and how many frames.
    encapsulated: Option<(Counter, u64)>,
    unknown_encapsulation: u64,
}

fn tunnel(tunnel: TunnelKind, tunnel_id: u32) -> Vantage {
    Vantage {
        tunnel,
        tunnel_id,
        ..Vantage::default()
    }
}

/// Every A frame (813) or its IP frames only (811, the 2 ARP frames kept plain).
const ALL: u64 = 813;
const IP_ONLY: u64 = 811;

fn wrapped_fixtures() -> Vec<Wrapped> {
    let plain = |file| Wrapped {
        file,
        frames_left_out: 0,
        vantage: |_| Vantage::default(),
        encapsulated: None,
        unknown_encapsulation: 0,
    };
    vec![
        Wrapped {
            // ARP rides in GRE too, as GRE protocol type 0x0806: not a payload twsleuth reads.
            unknown_encapsulation: 2,
            vantage: |_| tunnel(TunnelKind::Gre, 0),
            encapsulated: Some((|a| a.encapsulations.gre, ALL)),
            ..plain("capture/tunnels/gre.pcap")
        },
        Wrapped {
            vantage: |up| tunnel(TunnelKind::Gre, if up { 0xbeef } else { 0xcafe }),
            encapsulated: Some((|a| a.encapsulations.gre, IP_ONLY)),
            ..plain("capture/tunnels/gre-key-seq.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Gre, 42),
            encapsulated: Some((|a| a.encapsulations.gre, ALL)),
            ..plain("capture/tunnels/gre-teb.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Erspan, 0),
            encapsulated: Some((|a| a.encapsulations.erspan.min(a.encapsulations.gre), ALL)),
            ..plain("capture/tunnels/erspan1.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Erspan, 42),
            encapsulated: Some((|a| a.encapsulations.erspan.min(a.encapsulations.gre), ALL)),
            ..plain("capture/tunnels/erspan2.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Erspan, 77),
            encapsulated: Some((|a| a.encapsulations.erspan.min(a.encapsulations.gre), ALL)),
            ..plain("capture/tunnels/erspan3.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Vxlan, 5001),
            encapsulated: Some((|a| a.encapsulations.vxlan, ALL)),
            ..plain("capture/tunnels/vxlan.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Geneve, 0xabcd),
            encapsulated: Some((|a| a.encapsulations.geneve, ALL)),
            ..plain("capture/tunnels/geneve.pcap")
        },
        Wrapped {
            // One TEID per direction, as in a real GTP-U session.
            vantage: |up| tunnel(TunnelKind::GtpU, if up { 0x1000 } else { 0x2000 }),
            encapsulated: Some((|a| a.encapsulations.gtp_u, IP_ONLY)),
            ..plain("capture/tunnels/gtpu.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Mpls, 200),
            encapsulated: Some((|a| a.encapsulations.mpls, IP_ONLY)),
            ..plain("capture/tunnels/mpls.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Mpls, 300),
            encapsulated: Some((|a| a.encapsulations.mpls, ALL)),
            ..plain("capture/tunnels/mpls-pw.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::Pppoe, 0x1234),
            encapsulated: Some((|a| a.encapsulations.pppoe, IP_ONLY)),
            ..plain("capture/tunnels/pppoe.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::IpInIp, 0),
            encapsulated: Some((|a| a.encapsulations.ip_in_ip, IP_ONLY)),
            ..plain("capture/tunnels/ipip.pcap")
        },
        Wrapped {
            vantage: |_| tunnel(TunnelKind::IpInIp, 0),
            encapsulated: Some((|a| a.encapsulations.ip_in_ip, IP_ONLY)),
            ..plain("capture/tunnels/ip6tnl.pcap")
        },
        Wrapped {
            vantage: |_| Vantage {
                outer_vlan: 300,
                inner_vlan: 100,
                ..Vantage::default()
            },
            encapsulated: Some((|a| a.encapsulations.vlan, ALL)),
            ..plain("capture/tunnels/qinq3.pcap")
        },
        plain("capture/tunnels/ppp.pcap"),
        plain("capture/tunnels/ppp-hdlc.pcap"),
        plain("capture/tunnels/c-hdlc.pcap"),
        plain("capture/tunnels/fddi.pcap"),
        Wrapped {
            frames_left_out: 2,
            ..plain("capture/tunnels/raw12.pcap")
        },
        Wrapped {
            frames_left_out: 2,
            ..plain("capture/tunnels/raw14.pcap")
        },
    ]
}

/// Asserts that `wrapped` decodes to `source`'s segments, in order and with the same frame
/// numbers when `same_numbers`.
fn assert_same_segments(
    name: &str,
    wrapped: &[(u64, TcpSegment)],
    source: &[(u64, TcpSegment)],
    same_numbers: bool,
    keep_ip_id: bool,
) {
    assert_eq!(wrapped.len(), source.len(), "{name}: TCP segments");
    for ((number, segment), (source_number, source_segment)) in wrapped.iter().zip(source) {
        assert_eq!(
            essence(segment, keep_ip_id),
            essence(source_segment, keep_ip_id),
            "{name}: frame {number} (source frame {source_number})"
        );
        if same_numbers {
            assert_eq!(number, source_number, "{name}");
        }
    }
}

#[test]
fn wrapped_lab_capture_decodes_to_the_same_segments_frame_for_frame() {
    let (source, _) = decode_capture(&fixture(LAB));
    let source_segments = segments(&source);
    assert_eq!(source_segments.len(), 800);
    for case in wrapped_fixtures() {
        let (decoded, accounting) = decode_capture(&fixture(case.file));
        assert_eq!(
            accounting.frames + case.frames_left_out,
            source.len() as u64,
            "{}",
            case.file
        );
        let wrapped = segments(&decoded);
        assert_same_segments(
            case.file,
            &wrapped,
            &source_segments,
            case.frames_left_out == 0,
            true,
        );
        for (number, segment) in &wrapped {
            let up = segment.src < segment.dst;
            assert_eq!(
                segment.vantage,
                (case.vantage)(up),
                "{}: frame {number}",
                case.file
            );
        }
        if let Some((counter, frames)) = case.encapsulated {
            assert_eq!(
                counter(&accounting),
                frames,
                "{}: {accounting:?}",
                case.file
            );
        }
        assert_eq!(
            accounting.unknown_encapsulation, case.unknown_encapsulation,
            "{}",
            case.file
        );
        // The lab capture's snaplen (128) cut its 80 responses: still segments, counted.
        assert_eq!(accounting.tcp_from_truncated_frames, 80, "{}", case.file);
        assert_eq!(accounting.tcp_from_short_frames, 0, "{}", case.file);
        assert_eq!(
            (
                accounting.malformed,
                accounting.truncated,
                accounting.fragments
            ),
            (0, 0, 0),
            "{}",
            case.file
        );
    }
}

#[test]
fn ipv6_in_ipv4_decodes_to_the_ipv6_capture_segments() {
    let (source, _) = decode_capture(&fixture("capture/ipv6.pcap"));
    let (decoded, accounting) = decode_capture(&fixture("capture/tunnels/6in4.pcap"));
    assert_eq!(accounting.frames, source.len() as u64);
    assert_same_segments("6in4", &segments(&decoded), &segments(&source), true, true);
    assert_eq!(segments(&decoded).len(), 66);
    assert_eq!(accounting.encapsulations.ip_in_ip, 71);
    assert!(
        segments(&decoded)
            .iter()
            .all(|(_, s)| s.vantage == tunnel(TunnelKind::IpInIp, 0) && s.src.is_ipv6())
    );
}

#[test]
fn tcp_headers_split_across_ipv4_fragments_are_put_together_where_wireshark_shows_them() {
    let path = fixture("capture/tunnels/ipv4-split-header.pcap");
    let (decoded, accounting) = decode_capture(&path);
    let wrapped = segments(&decoded);
    // The source: the lab capture's first 4 connections (the frames before the 5th SYN).
    let (source, _) = decode_capture(&fixture(LAB));
    let fifth_syn = segments(&source)
        .iter()
        .filter(|(_, s)| s.flags.is_syn_only())
        .nth(4)
        .unwrap()
        .0;
    let source_segments: Vec<(u64, TcpSegment)> = segments(&source)
        .into_iter()
        .filter(|(n, _)| *n < fifth_syn)
        .collect();
    assert_eq!(source_segments.len(), 40);
    // One data segment lost its last fragment: it never completes (Wireshark shows no TCP for
    // it either), and is given up at the end.
    let lost = source_segments
        .iter()
        .position(|(_, s)| {
            s.payload_len == 5
                && !wrapped
                    .iter()
                    .any(|(_, w)| essence(w, false) == essence(s, false))
        })
        .expect("the lost segment is a 5-byte request");
    let mut expected = source_segments.clone();
    expected.remove(lost);
    // The fragmenter gave the datagrams new IP ids.
    assert_same_segments("split", &wrapped, &expected, false, false);
    assert_eq!(accounting.reassembly.reassembled, 35);
    assert_eq!(accounting.reassembly.expired, 1);
    assert_eq!(accounting.tcp_segments, 39);
    // Every other frame is a fragment, but the source's frames that are not TCP (ICMPv6, ARP).
    let not_tcp = source
        .iter()
        .filter(|(n, r)| *n < fifth_syn && r.is_err())
        .count() as u64;
    assert_eq!(accounting.other_ip + accounting.non_ip, not_tcp);
    assert_eq!(
        accounting.fragments,
        accounting.frames - accounting.tcp_segments - not_tcp,
        "{accounting:?}"
    );
    // The frame a reassembled segment takes is the one Wireshark shows it in.
    let numbers: Vec<u64> = wrapped.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, tshark_tcp_frames(&path));

    // Without state, a first fragment that holds the whole TCP header is read (with that
    // fragment's payload length); one whose header continues is a fragment, not malformed.
    let mut reader = CaptureReader::open(path.to_str().unwrap(), 0).unwrap();
    let mut stateless = Accounting::default();
    while reader.advance() {
        stateless.count(match decode(&reader.current().unwrap()) {
            Ok(_) => FrameClass::Tcp,
            Err(not_tcp) => not_tcp.class,
        });
    }
    assert_eq!((stateless.malformed, stateless.truncated), (0, 0));
    // The 4 responses cut by the snaplen were not fragmented; 2 fragmented data segments
    // kept their header whole in the first fragment.
    assert_eq!(stateless.tcp_segments, 4 + 2);
}

#[test]
fn ip_longer_than_the_recorded_frame_still_yields_its_tcp_segment() {
    let (source, _) = decode_capture(&fixture("lab/rejected/server.pcap"));
    let path = fixture("capture/tunnels/ip-longer-than-frame.pcap");
    let (decoded, accounting) = decode_capture(&path);
    let source: Vec<(u64, TcpSegment)> = segments(&source)
        .into_iter()
        .filter(|(n, _)| *n <= 120)
        .collect();
    assert_same_segments("longer", &segments(&decoded), &source, true, true);
    // Payload lengths up to 64240 come from the IP header although 74 bytes were kept.
    assert!(
        segments(&decoded)
            .iter()
            .any(|(_, s)| s.payload_len > 60_000)
    );
    assert_eq!(accounting.tcp_from_truncated_frames, 62);
    assert_eq!(accounting.tcp_from_short_frames, 62);
    assert_eq!(accounting.malformed, 0);
}

#[test]
fn tshark_finds_tcp_in_the_same_frames() {
    let mut files: Vec<&str> = wrapped_fixtures().iter().map(|c| c.file).collect();
    files.extend([
        "capture/tunnels/6in4.pcap",
        "capture/tunnels/ipv4-split-header.pcap",
        "capture/tunnels/ip-longer-than-frame.pcap",
    ]);
    for file in files {
        let path = fixture(file);
        let (decoded, _) = decode_capture(&path);
        let ours: Vec<u64> = segments(&decoded).iter().map(|(n, _)| *n).collect();
        assert_eq!(ours, tshark_tcp_frames(&path), "{file}");
    }
}
