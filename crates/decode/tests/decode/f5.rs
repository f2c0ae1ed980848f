//! The F5 fixtures of fixtures/capture/f5 (scripts/make_f5_fixtures.py): a real lab capture
//! with BIG-IP Ethernet trailers appended (both formats, every noise level) and the fileinfo
//! pseudo-packet first. tshark's f5ethtrailer and f5fileinfo dissectors are the oracle for
//! every field twsleuth reads; the TCP segments are the plain capture's, frame for frame, so the
//! flow tracker (pure logic over segments) finds the same connections and collisions.

use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use twsleuth_decode::{
    Accounting, Decoder, F5Peer, F5Summary, F5TrailerFormat, FrameClass, TcpFlags, TcpSegment,
};
use twsleuth_reader::CaptureReader;

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(relative)
}

const SOURCE: &str = "lab/paws/server.pcap";

/// The source's IP frames captured whole: the frames the script appended a trailer (or an
/// FCS) to.
fn whole_ip_frames() -> u64 {
    let mut reader = CaptureReader::open(fixture(SOURCE).to_str().unwrap(), 0).unwrap();
    let mut whole = 0;
    while reader.advance() {
        let frame = reader.current().unwrap();
        let ip = matches!(frame.data.get(12..14), Some([0x08, 0x00] | [0x86, 0xdd]));
        whole += u64::from(ip && frame.data.len() == frame.orig_len as usize);
    }
    whole
}

/// The tshark fields compared, in this order.
const FIELDS: [&str; 20] = [
    "f5ethtrailer.ingress",
    "f5ethtrailer.tmm",
    "f5ethtrailer.vip",
    "f5ethtrailer.flowid",
    "f5ethtrailer.peerid",
    "f5ethtrailer.rstcausetxt",
    "f5ethtrailer.peeripproto",
    "f5ethtrailer.peervlan",
    "f5ethtrailer.peerremoteaddr",
    "f5ethtrailer.peerremoteaddr6",
    "f5ethtrailer.peerremotertdom",
    "f5ethtrailer.peerlocaladdr",
    "f5ethtrailer.peerlocaladdr6",
    "f5ethtrailer.peerremoteport",
    "f5ethtrailer.peerlocalport",
    "f5fileinfo.cmdline",
    "f5fileinfo.version",
    "f5fileinfo.hostname",
    "f5fileinfo.platform",
    "f5fileinfo.product",
];

/// tshark's value of each of [`FIELDS`] in each frame (first occurrence).
fn tshark_rows(path: &Path) -> Vec<Vec<String>> {
    let mut command = Command::new("tshark");
    command.args(["-r", path.to_str().unwrap(), "-T", "fields"]);
    command.args(["-E", "separator=/t", "-E", "occurrence=f"]);
    for field in FIELDS {
        command.args(["-e", field]);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("tshark is needed by the tests (apt-get install tshark): {e}"));
    assert!(out.status.success(), "tshark failed on {}", path.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect()
}

/// An address as the trailer holds it (16 bytes), shown as tshark shows an IPv6 field.
fn as_ipv6(addr: IpAddr, route_domain: Option<u16>) -> String {
    match (addr, route_domain) {
        (IpAddr::V6(v6), _) => v6.to_string(),
        (IpAddr::V4(v4), None) => v4.to_ipv6_mapped().to_string(),
        (IpAddr::V4(v4), Some(rd)) => {
            let [a, b, c, d] = v4.octets();
            Ipv6Addr::new(
                0x2620,
                0,
                0x0c10,
                0xf501,
                0,
                rd,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
            )
            .to_string()
        }
    }
}

fn v4_only(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(_) => String::new(),
    }
}

/// What twsleuth read of every frame, as rows of [`FIELDS`], with the segments, the
/// accounting and the F5 summary.
struct Decoded {
    rows: Vec<Vec<String>>,
    segments: Vec<(u64, TcpSegment)>,
    formats: Vec<Option<F5TrailerFormat>>,
    accounting: Accounting,
    f5: F5Summary,
}

fn decode_f5(path: &Path) -> Decoded {
    let mut reader = CaptureReader::open(path.to_str().unwrap(), 0).unwrap();
    let mut decoder = Decoder::default();
    let (mut rows, mut segments, mut formats) = (Vec::new(), Vec::new(), Vec::new());
    while reader.advance() {
        let frame = reader.current().unwrap();
        let decoded = decoder.decode(&frame);
        let mut row = vec![String::new(); FIELDS.len()];
        let trailer = decoder.f5_trailer();
        formats.push(trailer.map(|t| t.format));
        if let Some(t) = trailer {
            let opt = |v: Option<String>| v.unwrap_or_default();
            row[0] = opt(t.ingress.map(|i| u8::from(i).to_string()));
            row[1] = opt(t.tmm.map(|tmm| tmm.to_string()));
            row[2] = opt(t.virtual_server.map(|id| decoder.f5_name(id).to_string()));
            row[3] = opt(t.flow_id.map(|id| format!("{id:#018x}")));
            row[4] = opt(t.peer_flow_id.map(|id| format!("{id:#018x}")));
            row[5] = opt(t.rst_cause.map(|id| decoder.f5_name(id).to_string()));
            if let Some(F5Peer {
                ip_protocol,
                vlan,
                remote_addr,
                remote_route_domain,
                local_addr,
                local_route_domain,
                remote_port,
                local_port,
            }) = t.peer
            {
                row[6] = ip_protocol.to_string();
                row[7] = vlan.to_string();
                row[8] = v4_only(remote_addr);
                row[9] = as_ipv6(remote_addr, remote_route_domain);
                row[10] = opt(remote_route_domain.map(|rd| rd.to_string()));
                row[11] = v4_only(local_addr);
                row[12] = as_ipv6(local_addr, local_route_domain);
                row[13] = remote_port.to_string();
                row[14] = local_port.to_string();
            }
        }
        if let Err(not_tcp) = &decoded {
            if not_tcp.class == FrameClass::CaptureInfo {
                let info = decoder.f5().file_info.last().unwrap();
                assert_eq!(info.frame_number, frame.number);
                for (at, value) in [
                    &info.command,
                    &info.version,
                    &info.hostname,
                    &info.platform,
                    &info.product,
                ]
                .into_iter()
                .enumerate()
                {
                    row[15 + at] = value.clone().unwrap_or_default();
                }
            }
        }
        if let Ok(segment) = decoded {
            segments.push((frame.number, segment));
        }
        rows.push(row);
    }
    assert!(reader.damage().is_none(), "{}", path.display());
    let accounting = decoder.finish();
    assert!(accounting.is_closed(), "{}: {accounting:?}", path.display());
    Decoded {
        rows,
        segments,
        formats,
        accounting,
        f5: decoder.f5().clone(),
    }
}

/// One fixture and what it holds.
struct F5Fixture {
    file: &'static str,
    format: F5TrailerFormat,
    /// Low, medium, high noise.
    noise: (bool, bool, bool),
    fileinfo: bool,
}

const FIXTURES: [F5Fixture; 6] = [
    F5Fixture {
        file: "legacy-low.pcap",
        format: F5TrailerFormat::Legacy,
        noise: (true, false, false),
        fileinfo: false,
    },
    F5Fixture {
        file: "legacy-medium.pcap",
        format: F5TrailerFormat::Legacy,
        noise: (true, true, false),
        fileinfo: true,
    },
    F5Fixture {
        file: "legacy-high.pcap",
        format: F5TrailerFormat::Legacy,
        noise: (true, true, true),
        fileinfo: true,
    },
    F5Fixture {
        file: "new-low.pcap",
        format: F5TrailerFormat::New,
        noise: (true, false, false),
        fileinfo: true,
    },
    F5Fixture {
        file: "new-medium.pcap",
        format: F5TrailerFormat::New,
        noise: (true, true, false),
        fileinfo: true,
    },
    F5Fixture {
        file: "new-high.pcap",
        format: F5TrailerFormat::New,
        noise: (true, true, true),
        fileinfo: true,
    },
];

#[test]
fn f5_trailer_fields_match_tshark_frame_for_frame() {
    for f in &FIXTURES {
        let path = fixture(&format!("capture/f5/{}", f.file));
        let ours = decode_f5(&path);
        let theirs = tshark_rows(&path);
        assert_eq!(ours.rows.len(), theirs.len(), "{}: frames", f.file);
        for (number, (a, b)) in ours.rows.iter().zip(&theirs).enumerate() {
            assert_eq!(a, b, "{} frame {}: twsleuth vs tshark", f.file, number + 1);
        }
        // Every frame tshark read a trailer in is one twsleuth counted as such, and the
        // trailers hold what the fixture was made with.
        let with_trailer = theirs.iter().filter(|row| !row[0].is_empty()).count() as u64;
        assert_eq!(with_trailer, whole_ip_frames(), "{}: trailers", f.file);
        let counts = &ours.accounting.bytes_after_ip;
        assert_eq!(counts.f5_trailer, with_trailer, "{}", f.file);
        assert_eq!(counts.unrecognized + counts.ethernet_fcs, 0, "{}", f.file);
        assert!(
            ours.formats
                .iter()
                .flatten()
                .all(|&format| format == f.format)
        );
        let summary = &ours.f5;
        assert_eq!(summary.frames, with_trailer);
        let levels = (
            summary.low_noise == with_trailer,
            summary.medium_noise == with_trailer,
            summary.high_noise == with_trailer,
        );
        assert_eq!(levels, f.noise, "{}: noise levels", f.file);
        assert_eq!(summary.medium_noise == 0, !f.noise.1, "{}", f.file);
        assert_eq!(summary.high_noise == 0, !f.noise.2, "{}", f.file);
        assert_eq!(summary.ingress + summary.egress, with_trailer);
        // Fileinfo: capture information, not traffic.
        let fileinfo = u64::from(f.fileinfo);
        assert_eq!(ours.accounting.capture_info, fileinfo, "{}", f.file);
        assert_eq!(summary.file_info.len() as u64, fileinfo, "{}", f.file);
        assert_eq!(ours.accounting.malformed, 0, "{}", f.file);
    }
}

#[test]
fn f5_trailers_leave_the_tcp_segments_of_the_plain_capture() {
    let mut reader = CaptureReader::open(fixture(SOURCE).to_str().unwrap(), 0).unwrap();
    let mut decoder = Decoder::default();
    let mut plain = Vec::new();
    while reader.advance() {
        let frame = reader.current().unwrap();
        if let Ok(segment) = decoder.decode(&frame) {
            plain.push((frame.number, segment));
        }
    }
    let plain_accounting = decoder.finish();
    assert!(plain.iter().any(|(_, s)| s.flags.contains(TcpFlags::RST)));
    for f in FIXTURES
        .iter()
        .map(|f| f.file)
        .chain(std::iter::once("fcs.pcap"))
    {
        let ours = decode_f5(&fixture(&format!("capture/f5/{f}")));
        let shift = ours.accounting.capture_info;
        assert_eq!(ours.segments.len(), plain.len(), "{f}");
        for ((number, segment), (plain_number, plain_segment)) in ours.segments.iter().zip(&plain) {
            assert_eq!(*number, plain_number + shift, "{f}");
            let mut expected = *plain_segment;
            expected.frame.number += shift;
            assert_eq!(*segment, expected, "{f} frame {number}");
        }
        assert_eq!(ours.accounting.tcp_segments, plain_accounting.tcp_segments);
        assert_eq!(
            ours.accounting.frames,
            plain_accounting.frames + shift,
            "{f}"
        );
    }
}

#[test]
fn virtual_servers_and_rst_causes_are_counted_from_the_trailers() {
    let path = fixture("capture/f5/new-high.pcap");
    let ours = decode_f5(&path);
    let theirs = tshark_rows(&path);
    let summary = &ours.f5;
    // Per virtual server: tshark's rows with that name.
    for vs in summary.virtual_servers() {
        let frames = theirs.iter().filter(|row| row[2] == vs.name).count() as u64;
        assert_eq!(vs.frames, frames, "{}", vs.name);
        assert!(vs.tcp_segments <= vs.frames && vs.syn > 0, "{vs:?}");
    }
    let named: u64 = summary.virtual_servers().iter().map(|vs| vs.frames).sum();
    assert_eq!(named + summary.no_virtual_server, summary.low_noise);
    assert!(summary.no_virtual_server > 0);
    // RST causes: on the RSTs, and each RST segment's frame has its cause.
    let causes = theirs.iter().filter(|row| !row[5].is_empty()).count() as u64;
    let counted: u64 = summary.rst_causes().iter().map(|c| c.frames).sum();
    assert_eq!(counted, causes);
    let rsts: Vec<u64> = ours
        .segments
        .iter()
        .filter(|(_, s)| s.flags.contains(TcpFlags::RST))
        .map(|(number, _)| *number)
        .collect();
    let with_cause: Vec<u64> = summary
        .rst_cause_frames
        .iter()
        .map(|(at, _)| at.number)
        .collect();
    assert!(!rsts.is_empty());
    assert_eq!(with_cause, rsts);
    for (at, id) in &summary.rst_cause_frames {
        assert_eq!(summary.name(*id), theirs[at.number as usize - 1][5]);
    }
    // Peers only where the peer flow id is not 0.
    assert!(summary.with_peer > 0 && summary.with_peer < summary.high_noise);
}

#[test]
fn an_fcs_after_the_ip_packet_is_counted_and_ignored() {
    let ours = decode_f5(&fixture("capture/f5/fcs.pcap"));
    let counts = ours.accounting.bytes_after_ip;
    // Every IP frame captured whole (those cut at 128 bytes have none; ARP has no IP).
    assert_eq!(counts.ethernet_fcs, whole_ip_frames());
    assert_eq!(counts.frames(), counts.ethernet_fcs);
    assert!(ours.f5.is_empty());
}
