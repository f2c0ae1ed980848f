//! Flow tracker on structured segment sequences: a few endpoints (so that tuples repeat and
//! incarnations, TIME_WAIT and collisions happen), any flags, sequence and acknowledgment
//! numbers near per-endpoint bases (so handshakes and FINs line up) or raw, timestamps moving
//! forward or backward, an optional timestamps option, and a small `max_memory`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twsleuth_decode::{FrameRef, TcpFlags, TcpOptions, TcpSegment, TcpTimestamps, Vantage};
use twsleuth_flows::{Findings, SECOND_NS, ServerOs, TimeWaitPolicy, TrackerConfig};
use twsleuth_fuzz::check_findings;

#[derive(Arbitrary, Debug)]
struct Input {
    /// `max_memory` = (1 + this % 16) × 8 KiB.
    max_memory: u8,
    /// Idle timeout and TIME_WAIT durations (see `config`).
    timing: u8,
    /// Capture start, seconds since the epoch (classic pcap's range).
    start_s: u32,
    segments: Vec<Seg>,
}

/// A number near a per-endpoint base, or any number.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Rel(u16),
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
struct Seg {
    /// Bits 0–1: client; bits 2–3: server; bit 4: IPv6; bit 5: sent by the server.
    tuple: u8,
    flags: u8,
    /// Sequence number, relative to the sender's base.
    seq: Num,
    /// Acknowledgment number, relative to the receiver's base.
    ack: Num,
    /// Time since the previous segment, in units of 10 µs (negative: out of order).
    dt: i32,
    payload_len: u16,
    /// TSval (sender's base) and TSecr (receiver's base).
    timestamps: Option<(Num, Num)>,
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last))
}

/// Clients and servers of one family; the last server is the first client (a self-connect),
/// and the last client has a port below the servers' (the midstream direction guess).
fn endpoint(v6_family: bool, server: bool, i: u8) -> (IpAddr, u16) {
    match (v6_family, server, i & 3) {
        (false, false, 0) => (v4(10, 0, 0, 1), 40000),
        (false, false, 1) => (v4(10, 0, 0, 1), 40002),
        (false, false, 2) => (v4(10, 0, 0, 2), 40000),
        (false, false, _) => (v4(10, 0, 0, 1), 79),
        (false, true, 0) => (v4(10, 1, 0, 10), 80),
        (false, true, 1) => (v4(10, 1, 0, 10), 8080),
        (false, true, 2) => (v4(10, 1, 0, 11), 80),
        (false, true, _) => (v4(10, 0, 0, 1), 40000),
        (true, false, 0) => (v6(1), 40000),
        (true, false, 1) => (v6(1), 40002),
        (true, false, 2) => (v6(2), 40000),
        (true, false, _) => (v6(1), 79),
        (true, true, 0) => (v6(0x10), 80),
        (true, true, 1) => (v6(0x10), 8080),
        (true, true, 2) => (v6(0x11), 80),
        (true, true, _) => (v6(1), 40000),
    }
}

/// A per-endpoint base for sequence numbers and TSvals; one sits just below 2^32 to wrap.
fn base(ip: IpAddr, port: u16, salt: u32) -> u32 {
    let ip_bits = match ip {
        IpAddr::V4(ip) => ip.to_bits(),
        IpAddr::V6(ip) => ip.to_bits() as u32,
    };
    if port == 40002 {
        return u32::MAX - 100 - salt;
    }
    (ip_bits ^ u32::from(port).rotate_left(16))
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(salt)
}

fn num(n: Num, base: u32) -> u32 {
    match n {
        Num::Rel(offset) => base.wrapping_add(u32::from(offset)),
        Num::Raw(raw) => raw,
    }
}

fn config(input: &Input) -> TrackerConfig {
    let idle_timeout_ns = [300, 10, 1, 65][usize::from(input.timing & 3)] * SECOND_NS;
    let default_os = [ServerOs::Linux, ServerOs::Windows, ServerOs::Freebsd, ServerOs::Macos]
        [usize::from((input.timing >> 2) & 3)];
    let mut time_wait = TimeWaitPolicy {
        default_ns: default_os.time_wait_ns(),
        ..TimeWaitPolicy::default()
    };
    if input.timing & 0x10 != 0 {
        time_wait.per_host.push((v4(10, 1, 0, 10), 120 * SECOND_NS));
        time_wait.per_host.push((v6(0x10), 30 * SECOND_NS));
    }
    if input.timing & 0x20 != 0 {
        time_wait.edge_slack_ns = 0;
    }
    TrackerConfig {
        server_os: default_os,
        time_wait,
        idle_timeout_ns,
        // A few tuples to a few hundred: evictions happen.
        max_memory: (1 + usize::from(input.max_memory % 16)) * 8192,
        ladders: input.timing & 0x40 != 0,
        ..TrackerConfig::default()
    }
}

fn segments(input: &Input) -> Vec<TcpSegment> {
    let mut ts_ns = i64::from(input.start_s) * SECOND_NS;
    let mut out = Vec::with_capacity(input.segments.len());
    for (i, s) in input.segments.iter().enumerate() {
        let family = s.tuple & 0x10 != 0;
        let client = endpoint(family, false, s.tuple);
        let server = endpoint(family, true, s.tuple >> 2);
        let (src, dst) = if s.tuple & 0x20 != 0 {
            (server, client)
        } else {
            (client, server)
        };
        ts_ns += i64::from(s.dt) * 10_000;
        out.push(TcpSegment {
            ts_ns,
            frame: FrameRef {
                file_index: 0,
                number: i as u64 + 1,
            },
            src: src.0,
            dst: dst.0,
            src_port: src.1,
            dst_port: dst.1,
            seq: num(s.seq, base(src.0, src.1, 0)),
            ack: num(s.ack, base(dst.0, dst.1, 0)),
            flags: TcpFlags(s.flags),
            window: 65535,
            ip_id: i as u16,
            payload_len: u32::from(s.payload_len),
            options: TcpOptions {
                mss: None,
                window_scale: None,
                sack_permitted: false,
                timestamps: s.timestamps.map(|(value, echo)| TcpTimestamps {
                    value: num(value, base(src.0, src.1, 7)),
                    echo_reply: num(echo, base(dst.0, dst.1, 7)),
                }),
            },
            vantage: Vantage::default(),
        });
    }
    out
}

fuzz_target!(|input: Input| {
    let config = config(&input);
    let segments = segments(&input);
    // Stretches of a few segments: sweeps and evictions happen between them.
    let findings = Findings::of_segments_in_stretches(&config, &segments, 2, 16);
    check_findings(&findings, &segments);
    if debug() {
        let c = &findings.counters;
        eprintln!(
            "segments {} connections {} collisions {} reused {} client_side_reuse {} late {} idle_evictions {} memory_evictions {} time_wait_evictions {} failed_attempts {} edge_dismissed {}",
            segments.len(),
            findings.connections.len(),
            findings.collisions.len(),
            c.reused_tuples,
            c.client_side_reuse,
            c.late_segments,
            c.idle_evictions,
            c.memory_evictions,
            c.time_wait_evictions,
            c.failed_attempts,
            c.edge_cases_dismissed
        );
    }
});

/// `TWSLEUTH_FUZZ_DEBUG=1`: print what each input made (to check what the corpus reaches).
fn debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("TWSLEUTH_FUZZ_DEBUG").is_some_and(|v| v == "1"))
}
