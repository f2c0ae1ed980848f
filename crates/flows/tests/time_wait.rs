//! The tracker on hand-built segment sequences: one behaviour per test, in the wire's own
//! terms (DESIGN.md sections 2–4).

use std::net::IpAddr;

use twsleuth_decode::{FrameRef, TcpFlags, TcpOptions, TcpSegment, TcpTimestamps, Vantage};
use twsleuth_flows::{
    ActiveCloser, CloseKind, Findings, Finished, FirstReply, Outcome, Partitioned, Prediction,
    Reason, Role, SECOND_NS, ServerOs, ShardedTracker, TrackerConfig, ZeekState,
};

const SYN: TcpFlags = TcpFlags::SYN;
const SYN_ACK: TcpFlags = TcpFlags(0x12);
const ACK: TcpFlags = TcpFlags::ACK;
const PSH_ACK: TcpFlags = TcpFlags(0x18);
const FIN_ACK: TcpFlags = TcpFlags(0x11);
const RST: TcpFlags = TcpFlags::RST;
const RST_ACK: TcpFlags = TcpFlags(0x14);

/// Builds segments between a balancer port and a server, numbering frames as it goes.
struct Wire {
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    segments: Vec<TcpSegment>,
}

#[derive(Clone, Copy)]
enum From {
    Client,
    Server,
}

impl Wire {
    fn new(client_port: u16) -> Wire {
        Wire {
            client: ("10.0.0.1".parse().unwrap(), client_port),
            server: ("10.1.0.10".parse().unwrap(), 80),
            segments: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn seg(
        &mut self,
        at_s: f64,
        from: From,
        flags: TcpFlags,
        seq: u32,
        ack: u32,
        len: u32,
        tsval: Option<u32>,
    ) -> &mut Wire {
        let (src, dst) = match from {
            From::Client => (self.client, self.server),
            From::Server => (self.server, self.client),
        };
        let number = self.segments.len() as u64 + 1;
        self.segments.push(TcpSegment {
            ts_ns: (at_s * 1e9) as i64,
            frame: FrameRef {
                file_index: 0,
                number,
            },
            src: src.0,
            dst: dst.0,
            src_port: src.1,
            dst_port: dst.1,
            seq,
            ack,
            flags,
            window: 500,
            ip_id: number as u16,
            payload_len: len,
            options: TcpOptions {
                timestamps: tsval.map(|value| TcpTimestamps {
                    value,
                    echo_reply: 0,
                }),
                ..TcpOptions::default()
            },
            vantage: Vantage::default(),
        });
        self
    }

    /// A whole HTTP-like exchange from `at_s`: handshake, request, response, then the closer's
    /// FIN first. Client ISN `c`, server ISN `s`; timestamps from `ts` when given.
    fn connection(
        &mut self,
        at_s: f64,
        c: u32,
        s: u32,
        closer: From,
        ts: Option<u32>,
    ) -> &mut Wire {
        let t = |d: u32| ts.map(|v| v + d);
        let c1 = c.wrapping_add(1);
        let s1 = s.wrapping_add(1);
        self.seg(at_s, From::Client, SYN, c, 0, 0, t(0))
            .seg(at_s + 0.001, From::Server, SYN_ACK, s, c1, 0, t(0))
            .seg(at_s + 0.002, From::Client, ACK, c1, s1, 0, t(1))
            .seg(at_s + 0.003, From::Client, PSH_ACK, c1, s1, 100, t(1))
            .seg(
                at_s + 0.004,
                From::Server,
                PSH_ACK,
                s1,
                c.wrapping_add(101),
                500,
                t(2),
            );
        let (cf, sf) = (c.wrapping_add(101), s.wrapping_add(501));
        let (cf1, sf1) = (cf.wrapping_add(1), sf.wrapping_add(1));
        match closer {
            From::Server => self
                .seg(at_s + 0.005, From::Server, FIN_ACK, sf, cf, 0, t(3))
                .seg(at_s + 0.006, From::Client, FIN_ACK, cf, sf1, 0, t(3))
                .seg(at_s + 0.007, From::Server, ACK, sf1, cf1, 0, t(4)),
            From::Client => self
                .seg(at_s + 0.005, From::Client, FIN_ACK, cf, sf, 0, t(3))
                .seg(at_s + 0.006, From::Server, FIN_ACK, sf, cf1, 0, t(3))
                .seg(at_s + 0.007, From::Client, ACK, cf1, sf1, 0, t(4)),
        }
    }

    fn findings_with(&self, config: TrackerConfig) -> Findings {
        Findings::of_segments(&config, &self.segments)
    }

    fn findings(&self) -> Findings {
        self.findings_with(TrackerConfig::default())
    }
}

/// The server's `snd_nxt` after `connection(.., s, From::Server, ..)`: ISN + 1 + 500 + FIN.
fn server_snd_nxt(s: u32) -> u32 {
    s + 502
}

/// The server's `rcv_nxt` after `connection(.., c, ..)`: ISN + 1 + 100 + FIN.
fn server_rcv_nxt(c: u32) -> u32 {
    c + 102
}

#[test]
fn server_closing_first_holds_time_wait_from_its_last_ack() {
    let mut wire = Wire::new(40000);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    let f = wire.findings();
    let c = &f.connections[0];
    assert_eq!(c.active_closer, Some(ActiveCloser::Resp));
    assert_eq!(c.time_wait_start_ns, Some((100.007 * 1e9) as i64));
    assert_eq!((c.conn_state, c.close), (ZeekState::SF, CloseKind::FinFin));
    assert_eq!(c.history.as_str(), "ShADdfFa");
    assert_eq!(
        (c.orig_bytes, c.resp_bytes, c.orig_pkts, c.resp_pkts),
        (100, 500, 4, 4)
    );
    assert_eq!(c.low_confidence, 0);
}

#[test]
fn time_wait_syn_with_newer_timestamp_is_accepted_with_the_isn_signature() {
    let mut wire = Wire::new(40000);
    wire.connection(100.0, 1000, 5000, From::Server, Some(10_000));
    // 20 s later, same port: ISN below the old rcv_nxt but a newer timestamp.
    let isn = server_snd_nxt(5000) + 65_537;
    wire.seg(120.0, From::Client, SYN, 500, 0, 0, Some(30_000))
        .seg(120.0002, From::Server, SYN_ACK, isn, 501, 0, Some(1))
        .seg(120.0004, From::Client, ACK, 501, isn + 1, 0, Some(30_001));
    let f = wire.findings();
    assert_eq!(f.collisions.len(), 1);
    let col = &f.collisions[0];
    assert_eq!(col.outcome, Outcome::Accepted);
    assert_eq!(col.holder_role, Role::Resp);
    // Ids are input positions: the old connection began at segment 0, the new one at 8.
    assert_eq!((col.prev_uid, col.uid), (0, 8));
    assert_eq!(col.first_reply, FirstReply::SynAck);
    assert!(col.isn_signature);
    assert_eq!(col.prediction, Some(Prediction::Accept));
    assert_eq!(col.prediction_agrees, Some(true));
    assert_eq!(col.first_syn_frame.number, 9);
    assert_eq!(col.cost_ns, Some(200_000));
    assert!((col.time_wait_age_ns - (19.993 * 1e9) as i64).abs() < 1000);
    assert_eq!(f.connections[1].prev_uid, Some(0));
    assert_eq!(f.counters.reused_tuples, 1);
}

#[test]
fn time_wait_syn_below_rcv_nxt_without_timestamps_is_rejected_then_recovers() {
    let mut wire = Wire::new(40001);
    wire.connection(100.0, 1_000_000, 5000, From::Server, None);
    let old_rcv_nxt = server_rcv_nxt(1_000_000);
    wire.seg(100.5, From::Client, SYN, 2000, 0, 0, None)
        // Bare ACK with the old connection's numbers.
        .seg(
            100.5002,
            From::Server,
            ACK,
            server_snd_nxt(5000),
            old_rcv_nxt,
            0,
            None,
        )
        // The client in SYN-SENT resets with seq = that ack (RFC 9293 section 3.10.7.3).
        .seg(100.5003, From::Client, RST, old_rcv_nxt, 0, 0, None)
        .seg(101.5, From::Client, SYN, 2000, 0, 0, None)
        .seg(101.5002, From::Server, SYN_ACK, 777, 2001, 0, None)
        .seg(101.5004, From::Client, ACK, 2001, 778, 0, None);
    let f = wire.findings();
    let col = &f.collisions[0];
    assert_eq!(col.outcome, Outcome::RejectedRecovered);
    assert_eq!(col.first_reply, FirstReply::Ack);
    assert_eq!(col.syn_attempts, 2);
    assert_eq!(col.cost_ns, Some(1_000_200_000));
    assert_eq!(col.prediction, Some(Prediction::Reject));
    assert_eq!(col.prediction_agrees, Some(true));
    assert!(!col.isn_signature);
    assert_eq!(col.reason, Some(Reason::SeqNotAfterRcvNxt));
    // Its RST carries the old rcv_nxt: it ends the TIME_WAIT (RFC 1337), which let the
    // retried SYN through.
    assert!(col.time_wait_assassinated);
    // The client's RST in SYN-SENT does not end the new connection.
    let new = &f.connections[1];
    assert_eq!(new.conn_state, ZeekState::S1);
    assert_eq!(new.syn_retransmits, 1);
    assert_eq!(new.handshake_ns, Some(1_000_400_000));
}

#[test]
fn paws_rejects_an_older_timestamp_even_with_a_higher_sequence_number() {
    let mut wire = Wire::new(40002);
    wire.connection(100.0, 1000, 5000, From::Server, Some(50_000));
    wire.seg(110.0, From::Client, SYN, 9_000_000, 0, 0, Some(10))
        .seg(
            110.0002,
            From::Server,
            ACK,
            server_snd_nxt(5000),
            server_rcv_nxt(1000),
            0,
            Some(7),
        );
    let f = wire.findings();
    let col = &f.collisions[0];
    assert_eq!(col.prediction, Some(Prediction::Reject));
    assert_eq!(col.outcome, Outcome::Failed);
    assert_eq!(col.first_reply, FirstReply::Ack);
    assert_eq!(col.reason, Some(Reason::Paws));
    assert!(!col.time_wait_assassinated, "no RST was sent");
}

#[test]
fn a_refusal_linux_would_not_make_is_named_so_and_a_stray_rst_ends_nothing() {
    // The SYN's sequence number is after the old rcv_nxt and there are no timestamps: Linux
    // accepts it, yet a bare ACK came back. The client's RST carries another sequence number
    // than the TIME_WAIT's rcv_nxt, which Linux ignores.
    let mut wire = Wire::new(40003);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    let old_rcv_nxt = server_rcv_nxt(1000);
    wire.seg(110.0, From::Client, SYN, 9_000_000, 0, 0, None)
        .seg(
            110.0002,
            From::Server,
            ACK,
            server_snd_nxt(5000),
            old_rcv_nxt,
            0,
            None,
        )
        .seg(110.0003, From::Client, RST, old_rcv_nxt + 5, 0, 0, None)
        .seg(111.0, From::Client, SYN, 9_000_000, 0, 0, None)
        .seg(111.0002, From::Server, SYN_ACK, 777, 9_000_001, 0, None)
        .seg(111.0004, From::Client, ACK, 9_000_001, 778, 0, None);
    let col = &wire.findings().collisions[0];
    assert_eq!(col.outcome, Outcome::RejectedRecovered);
    assert_eq!(col.prediction_agrees, Some(false));
    assert_eq!(col.reason, Some(Reason::LinuxWouldAccept));
    assert!(!col.time_wait_assassinated);
}

#[test]
fn client_reusing_its_own_time_wait_is_not_a_collision() {
    let mut wire = Wire::new(40003);
    wire.connection(100.0, 1000, 5000, From::Client, Some(1));
    wire.connection(101.0, 90_000, 7000, From::Client, Some(2000));
    let f = wire.findings();
    assert!(f.collisions.is_empty());
    assert_eq!(f.counters.client_side_reuse, 1);
    assert_eq!(f.connections[0].active_closer, Some(ActiveCloser::Orig));
}

#[test]
fn reuse_after_time_wait_ended_is_only_a_port_reuse() {
    let mut wire = Wire::new(40004);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    wire.connection(170.0, 2000, 6000, From::Server, None);
    let f = wire.findings();
    assert!(f.collisions.is_empty());
    assert_eq!(f.counters.reused_tuples, 1);
    let interval = f.connections[1].reuse_interval_ns.unwrap();
    assert!(
        (interval - (69.993 * 1e9) as i64).abs() < 1000,
        "{interval}"
    );
}

#[test]
fn edge_of_time_wait_is_decided_by_the_servers_answer() {
    // 61 s after TIME_WAIT began: within the timer-wheel slack.
    let mut confirmed = Wire::new(40005);
    confirmed.connection(100.0, 1000, 5000, From::Server, Some(100));
    let isn = server_snd_nxt(5000) + 65_537;
    confirmed
        .seg(161.0, From::Client, SYN, 3000, 0, 0, Some(90_000))
        .seg(161.0002, From::Server, SYN_ACK, isn, 3001, 0, Some(1));
    let f = confirmed.findings();
    assert_eq!(f.collisions.len(), 1);
    assert!(f.collisions[0].edge_case);

    let mut dismissed = Wire::new(40005);
    dismissed.connection(100.0, 1000, 5000, From::Server, Some(100));
    dismissed
        .seg(161.0, From::Client, SYN, 3000, 0, 0, Some(90_000))
        .seg(161.0002, From::Server, SYN_ACK, 123_456, 3001, 0, Some(1));
    let f = dismissed.findings();
    assert!(f.collisions.is_empty());
    assert_eq!(f.counters.edge_cases_dismissed, 1);
}

#[test]
fn a_connection_ended_by_rst_leaves_no_time_wait() {
    let mut wire = Wire::new(40006);
    wire.seg(100.0, From::Client, SYN, 10, 0, 0, None)
        .seg(100.001, From::Server, SYN_ACK, 20, 11, 0, None)
        .seg(100.002, From::Client, ACK, 11, 21, 0, None)
        .seg(100.003, From::Server, RST_ACK, 21, 11, 0, None);
    wire.connection(101.0, 500, 600, From::Server, None);
    let f = wire.findings();
    assert!(f.collisions.is_empty());
    assert_eq!(f.connections[0].close, CloseKind::RstByResp);
    assert_eq!(f.connections[0].conn_state, ZeekState::RSTR);
}

#[test]
fn a_rst_received_in_time_wait_ends_it() {
    let mut wire = Wire::new(40007);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    wire.seg(100.5, From::Client, RST, server_rcv_nxt(1000), 0, 0, None);
    wire.seg(105.0, From::Client, SYN, 10, 0, 0, None).seg(
        105.001,
        From::Server,
        SYN_ACK,
        20,
        11,
        0,
        None,
    );
    let f = wire.findings();
    assert!(f.collisions.is_empty());
}

#[test]
fn simultaneous_close_leaves_both_ends_in_time_wait() {
    let mut wire = Wire::new(40008);
    wire.seg(100.0, From::Client, SYN, 10, 0, 0, None)
        .seg(100.001, From::Server, SYN_ACK, 20, 11, 0, None)
        .seg(100.002, From::Client, ACK, 11, 21, 0, None)
        // The FINs cross: neither acknowledges the other's.
        .seg(100.003, From::Client, FIN_ACK, 11, 21, 0, None)
        .seg(100.003, From::Server, FIN_ACK, 21, 11, 0, None)
        .seg(100.004, From::Client, ACK, 12, 22, 0, None)
        .seg(100.004, From::Server, ACK, 22, 12, 0, None)
        .seg(110.0, From::Client, SYN, 5, 0, 0, None)
        .seg(110.001, From::Server, ACK, 22, 12, 0, None);
    let f = wire.findings();
    assert_eq!(f.connections[0].active_closer, Some(ActiveCloser::Both));
    assert_eq!(f.collisions.len(), 1);
    assert_eq!(f.collisions[0].outcome, Outcome::Failed);
}

#[test]
fn unanswered_first_syn_then_answered_retransmission() {
    let mut wire = Wire::new(40009);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    wire.seg(100.3, From::Client, SYN, 50, 0, 0, None)
        .seg(101.3, From::Client, SYN, 50, 0, 0, None)
        .seg(
            101.3002,
            From::Server,
            ACK,
            server_snd_nxt(5000),
            server_rcv_nxt(1000),
            0,
            None,
        )
        .seg(
            101.3003,
            From::Client,
            RST,
            server_rcv_nxt(1000),
            0,
            0,
            None,
        )
        .seg(103.3, From::Client, SYN, 50, 0, 0, None)
        .seg(103.3002, From::Server, SYN_ACK, 9, 51, 0, None);
    let col = &wire.findings().collisions[0];
    assert_eq!(col.outcome, Outcome::Unanswered);
    assert_eq!(col.first_reply, FirstReply::None);
    assert_eq!(col.syn_attempts, 3);
    assert_eq!(col.prediction_agrees, Some(true));
}

#[test]
fn reset_answer_is_its_own_outcome() {
    let mut wire = Wire::new(40010);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    wire.seg(102.0, From::Client, SYN, 7, 0, 0, None).seg(
        102.0002,
        From::Server,
        RST_ACK,
        0,
        8,
        0,
        None,
    );
    let f = wire.findings();
    assert_eq!(f.collisions[0].outcome, Outcome::Reset);
    assert_eq!(f.collisions[0].prediction_agrees, None);
    // Linux's TIME_WAIT answers a SYN it refuses with an ACK, never a RST: the reset is the
    // reason, whatever the SYN's numbers.
    assert_eq!(f.collisions[0].reason, Some(Reason::HolderReset));
    assert_eq!(f.connections[1].conn_state, ZeekState::REJ);
}

#[test]
fn syn_retransmissions_stay_in_one_incarnation() {
    let mut wire = Wire::new(40011);
    wire.seg(1.0, From::Client, SYN, 10, 0, 0, None)
        .seg(2.0, From::Client, SYN, 10, 0, 0, None)
        .seg(4.0, From::Client, SYN, 10, 0, 0, None);
    let f = wire.findings();
    assert_eq!(f.connections.len(), 1);
    assert_eq!(f.connections[0].syn_retransmits, 2);
    assert_eq!(f.connections[0].conn_state, ZeekState::S0);
    assert_eq!(f.connections[0].close, CloseKind::NeverEstablished);
}

#[test]
fn sequence_numbers_wrapping_past_two_to_the_32_keep_fin_tracking_right() {
    let mut wire = Wire::new(40012);
    wire.connection(100.0, u32::MAX - 50, u32::MAX - 200, From::Server, None);
    let f = wire.findings();
    assert_eq!(f.connections[0].close, CloseKind::FinFin);
    assert!(f.connections[0].time_wait_start_ns.is_some());
}

#[test]
fn missing_final_ack_is_inferred_from_the_fin_and_marked_low_confidence() {
    let mut wire = Wire::new(40013);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    wire.segments.pop();
    let f = wire.findings();
    assert_ne!(f.connections[0].low_confidence, 0);
    assert_eq!(
        f.connections[0].time_wait_start_ns,
        Some((100.006 * 1e9) as i64)
    );
}

#[test]
fn midstream_traffic_gets_roles_from_the_well_known_port() {
    let mut wire = Wire::new(40014);
    wire.seg(1.0, From::Server, PSH_ACK, 10, 20, 100, None);
    let c = &wire.findings().connections[0];
    assert_eq!((c.orig_p, c.resp_p), (40014, 80));
    assert_eq!(c.conn_state, ZeekState::OTH);
    assert_ne!(c.low_confidence, 0);
}

#[test]
fn idle_connections_are_evicted_and_counted() {
    let mut wire = Wire::new(40015);
    wire.seg(1.0, From::Client, SYN, 10, 0, 0, None).seg(
        1.001,
        From::Server,
        SYN_ACK,
        20,
        11,
        0,
        None,
    );
    let mut other = Wire::new(50000);
    other.seg(400.0, From::Client, SYN, 1, 0, 0, None);
    wire.segments.extend(other.segments);
    let config = TrackerConfig {
        idle_timeout_ns: 300 * SECOND_NS,
        ..TrackerConfig::default()
    };
    let f = wire.findings_with(config);
    assert_eq!(f.counters.idle_evictions, 1);
    assert_eq!(f.connections[0].close, CloseKind::Evicted);
}

/// A SYN flood from many sources, never answered, around a real collision: the flood's
/// tuples are evicted first and its records only counted beyond their share of the memory, and
/// the server's TIME_WAIT survives to meet the reused port.
fn flood_around_a_collision(flood_syns: u32) -> Vec<TcpSegment> {
    let mut real = Wire::new(40000);
    real.connection(0.0, 1000, 5000, From::Server, None);
    real.seg(30.0, From::Client, SYN, 900_000, 0, 0, None).seg(
        30.001,
        From::Server,
        SYN_ACK,
        77,
        900_001,
        0,
        None,
    );
    let mut all = real.segments;
    for n in 0..flood_syns {
        let mut flood = Wire::new(1024 + (n % 60000) as u16);
        flood.client.0 = IpAddr::from([172, 16, (n >> 16) as u8, (n >> 8) as u8]);
        flood.seg(
            0.01 + f64::from(n) * 29.0 / f64::from(flood_syns),
            From::Client,
            SYN,
            n,
            0,
            0,
            None,
        );
        all.extend(flood.segments);
    }
    all.sort_by_key(|s| s.ts_ns);
    all
}

#[test]
fn a_syn_flood_is_evicted_first_and_hides_no_collision() {
    let segments = flood_around_a_collision(20_000);
    let config = TrackerConfig {
        max_memory: 1 << 20,
        ..TrackerConfig::default()
    };
    // The budget is kept between stretches of input.
    let f = Findings::of_segments_in_stretches(&config, &segments, 1, 1024);
    let c = &f.counters;
    assert_eq!(f.collisions.len(), 1, "the real collision is still found");
    assert_eq!(c.time_wait_evictions, 0, "{c:?}");
    assert_eq!(f.collisions[0].outcome, Outcome::Accepted);
    assert_eq!(c.failed_attempts, 20_000);
    assert!(c.memory_evictions > 10_000, "{c:?}");
    // Every attempt has its record: records leave the tracker as they end.
    assert_eq!(f.connections.len(), 20_002);
    // Ids are input positions: the collided incarnation and its predecessor are found by them.
    let by_uid = |uid: u64| f.connections.iter().find(|r| r.uid == uid).unwrap();
    let collided = by_uid(f.collisions[0].uid);
    assert_eq!(collided.orig_p, 40000);
    assert_eq!(collided.collision, Some(Outcome::Accepted));
    assert_eq!(collided.prev_uid, Some(f.collisions[0].prev_uid));
    assert_eq!(by_uid(collided.prev_uid.unwrap()).orig_p, 40000);
    assert!(f.connections.windows(2).all(|w| w[0].uid < w[1].uid));
    // With memory to spare nothing is evicted.
    let roomy = Findings::of_segments(&TrackerConfig::default(), &segments);
    assert_eq!(roomy.counters.memory_evictions, 0);
    assert_eq!(roomy.connections.len(), 20_002);
}

/// Many balancer ports cycling over a few servers, with collisions of every kind.
fn busy_wire() -> Vec<TcpSegment> {
    let mut all = Vec::new();
    for round in 0..3u32 {
        for port in 0..40u16 {
            let mut wire = Wire::new(41000 + port);
            wire.server.1 = 80 + port % 3;
            let at = f64::from(round) * 20.0 + f64::from(port) * 0.01;
            let c = if port % 4 == 0 {
                10 + round
            } else {
                1_000_000 * (round + 1)
            };
            wire.connection(
                at,
                c,
                7000 * (round + 1),
                From::Server,
                Some(round * 1000 + 1),
            );
            all.extend(wire.segments);
        }
    }
    all.sort_by_key(|s| s.ts_ns);
    all
}

fn run_sharded(segments: &[TcpSegment], shards: usize, stretch_len: usize) -> String {
    let mut tracker = ShardedTracker::new(&TrackerConfig::default(), shards);
    let mut all = Finished::default();
    for (number, chunk) in segments.chunks(stretch_len).enumerate() {
        let mut stretch = Partitioned::new(tracker.shards());
        for (offset, seg) in chunk.iter().enumerate() {
            stretch.push((number * stretch_len + offset) as u64, *seg);
        }
        tracker.process(&stretch);
        all.append(tracker.take_finished());
    }
    let (last, counters) = tracker.finish();
    all.append(last);
    let f = Findings::new(all, counters);
    format!("{:?}\n{:?}", f.connections, f.collisions)
}

#[test]
fn sharded_findings_equal_single_thread_findings() {
    let segments = busy_wire();
    let single = run_sharded(&segments, 1, segments.len());
    assert!(single.contains("Accepted"));
    for shards in [2, 3, 8] {
        assert_eq!(
            run_sharded(&segments, shards, segments.len()),
            single,
            "{shards} shards"
        );
    }
}

/// Records are numbered and placed as the stretches go: how the input is cut must not matter,
/// nor whether one `FlowTracker` follows it all.
#[test]
fn sharded_findings_do_not_depend_on_the_stretches() {
    let segments = busy_wire();
    let single = run_sharded(&segments, 1, segments.len());
    for (shards, stretch_len) in [(1, 1), (3, 1), (2, 7), (8, 50)] {
        assert_eq!(
            run_sharded(&segments, shards, stretch_len),
            single,
            "{shards} shards, stretches of {stretch_len}"
        );
    }
    let f = Findings::of_segments(&TrackerConfig::default(), &segments);
    assert_eq!(format!("{:?}\n{:?}", f.connections, f.collisions), single);
}

/// The wire as a capture holding one direction only sees it.
fn only(wire: &Wire, from: From) -> Vec<TcpSegment> {
    let sender = match from {
        From::Client => wire.client,
        From::Server => wire.server,
    };
    wire.segments
        .iter()
        .filter(|s| (s.src, s.src_port) == sender)
        .copied()
        .collect()
}

fn findings_of(segments: &[TcpSegment]) -> Findings {
    Findings::of_segments(&TrackerConfig::default(), segments)
}

#[test]
fn server_only_syn_ack_on_a_tuple_the_server_closed_is_an_inferred_accepted_collision() {
    let mut wire = Wire::new(40100);
    wire.connection(100.0, 1000, 5000, From::Server, Some(10_000));
    let isn = server_snd_nxt(5000) + 65_537;
    wire.seg(120.0, From::Client, SYN, 500, 0, 0, Some(30_000))
        .seg(120.0002, From::Server, SYN_ACK, isn, 501, 0, Some(1))
        .seg(120.0004, From::Client, ACK, 501, isn + 1, 0, Some(30_001));
    let f = findings_of(&only(&wire, From::Server));
    assert_eq!(f.collisions.len(), 1);
    let col = &f.collisions[0];
    assert_eq!(col.outcome, Outcome::Accepted);
    assert!(col.inferred && col.syn_ts_estimated);
    assert_eq!(col.holder_role, Role::Resp);
    assert!(col.isn_signature, "Linux's ISN = old snd_nxt + 65537");
    // The SYN's ISN (the SYN-ACK's ack - 1) and TSval (its TSecr: 1 here, older than the
    // old connection's 10,003) are inferred: PAWS would have rejected it, yet it was accepted.
    assert_eq!(col.prediction, Some(Prediction::Reject));
    assert_eq!(col.prediction_agrees, Some(false));
    assert_eq!(col.ts_ns, (120.0002 * 1e9) as i64);
    // The basis: the server's ACK of the client's FIN (the close), then the SYN-ACK.
    let frames: Vec<u64> = col.basis.frames().iter().map(|f| f.number).collect();
    assert_eq!(frames, [8, 10]);
    assert_eq!(f.connections[0].unseen_side, Some(Role::Orig));
    assert_eq!(f.connections[0].active_closer, Some(ActiveCloser::Resp));
}

#[test]
fn server_only_bare_ack_with_old_numbers_then_syn_ack_is_rejected_then_recovered() {
    let mut wire = Wire::new(40101);
    wire.connection(100.0, 1_000_000, 5000, From::Server, None);
    let old_rcv_nxt = server_rcv_nxt(1_000_000);
    wire.seg(130.0, From::Client, SYN, 2000, 0, 0, None)
        .seg(
            130.0002,
            From::Server,
            ACK,
            server_snd_nxt(5000),
            old_rcv_nxt,
            0,
            None,
        )
        .seg(130.0003, From::Client, RST, old_rcv_nxt, 0, 0, None)
        .seg(130.0103, From::Client, SYN, 2000, 0, 0, None)
        .seg(130.0105, From::Server, SYN_ACK, 777, 2001, 0, None)
        .seg(130.0107, From::Client, ACK, 2001, 778, 0, None);
    let f = findings_of(&only(&wire, From::Server));
    assert_eq!(f.collisions.len(), 1);
    let col = &f.collisions[0];
    assert_eq!(col.outcome, Outcome::RejectedRecovered);
    assert_eq!(col.first_reply, FirstReply::Ack);
    // From the TIME_WAIT's answer to the SYN-ACK of the retry: the cost as far as the
    // server's side shows it.
    assert_eq!(col.ts_ns, (130.0002 * 1e9) as i64);
    assert_eq!(col.cost_ns, Some(10_300_000));
    assert_eq!(col.prediction, Some(Prediction::Reject));
    assert_eq!(col.prediction_agrees, Some(true));
    assert!(col.inferred);
}

#[test]
fn a_lone_time_wait_ack_without_a_syn_ack_after_it_is_no_collision() {
    let mut wire = Wire::new(40102);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    // The server re-acknowledges a retransmitted FIN: the same numbers, no SYN behind it.
    wire.seg(
        101.0,
        From::Server,
        ACK,
        server_snd_nxt(5000),
        server_rcv_nxt(1000),
        0,
        None,
    );
    let f = findings_of(&only(&wire, From::Server));
    assert!(f.collisions.is_empty());
}

#[test]
fn client_only_syn_then_handshake_ack_is_an_inferred_accepted_collision() {
    let mut wire = Wire::new(40103);
    wire.connection(100.0, 1000, 5000, From::Server, Some(10_000));
    let isn = server_snd_nxt(5000) + 65_537;
    wire.seg(120.0, From::Client, SYN, 500, 0, 0, Some(30_000))
        .seg(120.0002, From::Server, SYN_ACK, isn, 501, 0, Some(1))
        .seg(120.0004, From::Client, ACK, 501, isn + 1, 0, Some(30_001));
    let f = findings_of(&only(&wire, From::Client));
    assert_eq!(f.collisions.len(), 1);
    let col = &f.collisions[0];
    assert_eq!(col.outcome, Outcome::Accepted);
    assert!(col.inferred && !col.syn_ts_estimated);
    assert!(
        col.isn_signature,
        "the handshake ACK acknowledges old snd_nxt + 65537 + 1"
    );
    assert_eq!(col.prediction, Some(Prediction::Accept));
    assert_eq!(col.cost_ns, Some(400_000), "SYN to the handshake's ACK");
    assert_eq!(f.connections[0].unseen_side, Some(Role::Resp));
    assert_eq!(f.connections[0].active_closer, Some(ActiveCloser::Resp));
}

#[test]
fn client_only_rst_with_the_old_numbers_then_the_same_syn_is_rejected_then_recovered() {
    let mut wire = Wire::new(40104);
    wire.connection(100.0, 1_000_000, 5000, From::Server, None);
    let old_rcv_nxt = server_rcv_nxt(1_000_000);
    wire.seg(130.0, From::Client, SYN, 2000, 0, 0, None)
        .seg(
            130.0002,
            From::Server,
            ACK,
            server_snd_nxt(5000),
            old_rcv_nxt,
            0,
            None,
        )
        .seg(130.0003, From::Client, RST, old_rcv_nxt, 0, 0, None)
        .seg(130.0103, From::Client, SYN, 2000, 0, 0, None)
        .seg(130.0105, From::Server, SYN_ACK, 777, 2001, 0, None)
        .seg(130.0107, From::Client, ACK, 2001, 778, 0, None);
    let f = findings_of(&only(&wire, From::Client));
    let col = &f.collisions[0];
    assert_eq!(col.outcome, Outcome::RejectedRecovered);
    assert_eq!(col.syn_attempts, 2);
    assert_eq!(col.prediction_agrees, Some(true));
    let frames: Vec<u64> = col.basis.frames().iter().map(|f| f.number).collect();
    // The client's FIN (the close), the SYN, the RST, the handshake ACK.
    assert_eq!(frames, [7, 9, 11, 14]);
}

#[test]
fn client_only_syn_followed_by_nothing_has_an_unknown_outcome() {
    let mut wire = Wire::new(40105);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    wire.seg(130.0, From::Client, SYN, 2000, 0, 0, None);
    let f = findings_of(&only(&wire, From::Client));
    assert_eq!(f.collisions[0].outcome, Outcome::Unknown);
    assert_eq!(f.collisions[0].prediction_agrees, None);
}

#[test]
fn one_direction_of_a_client_that_closed_first_shows_its_own_reuse_not_a_collision() {
    for from in [From::Client, From::Server] {
        let mut wire = Wire::new(40106);
        wire.connection(100.0, 1000, 5000, From::Client, Some(1));
        wire.connection(101.0, 90_000, 7000, From::Client, Some(2000));
        let f = findings_of(&only(&wire, from));
        assert!(f.collisions.is_empty());
        assert_eq!(f.counters.client_side_reuse, 1);
        assert_eq!(f.connections[0].active_closer, Some(ActiveCloser::Orig));
        assert!(f.connections[1].client_side_reuse);
    }
}

#[test]
fn a_late_rst_kills_time_wait_only_with_the_sequence_number_it_expects() {
    // Ten seconds after the close (long compacted): a RST with a wrong sequence number is
    // ignored, as Linux does; one with seq == rcv_nxt ends the TIME_WAIT (RFC 1337).
    for (rst_seq, killed) in [
        (server_rcv_nxt(1000) + 5, false),
        (server_rcv_nxt(1000), true),
    ] {
        let mut wire = Wire::new(40107);
        wire.connection(100.0, 1000, 5000, From::Server, None);
        wire.seg(110.0, From::Client, RST, rst_seq, 0, 0, None);
        wire.seg(115.0, From::Client, SYN, 9_000_000, 0, 0, None)
            .seg(115.001, From::Server, SYN_ACK, 20, 9_000_001, 0, None);
        let f = wire.findings();
        assert_eq!(f.collisions.is_empty(), killed, "RST seq {rst_seq}");
        assert_eq!(f.counters.time_wait_assassinations, u64::from(killed));
    }
}

#[test]
fn a_fast_open_syn_ack_acknowledging_the_syns_data_stays_one_connection() {
    // RFC 7413: the SYN carries 50 bytes; the SYN-ACK acknowledges them (cookie accepted) or
    // only the SYN (cookie refused, data sent again).
    for ack in [1051, 1001] {
        let mut wire = Wire::new(40108);
        wire.seg(100.0, From::Client, SYN, 1000, 0, 50, None)
            .seg(100.001, From::Server, SYN_ACK, 5000, ack, 0, None)
            .seg(100.002, From::Client, ACK, 1051, 5001, 0, None);
        let f = wire.findings();
        assert_eq!(f.connections.len(), 1, "ack {ack}");
        assert_eq!(f.connections[0].conn_state, ZeekState::S1);
    }
}

#[test]
fn the_linux_prediction_is_made_only_for_linux_servers() {
    let mut wire = Wire::new(40109);
    wire.connection(100.0, 1000, 5000, From::Server, None);
    wire.seg(120.0, From::Client, SYN, 500, 0, 0, None).seg(
        120.0002,
        From::Server,
        SYN_ACK,
        5,
        501,
        0,
        None,
    );
    let config = TrackerConfig {
        server_os: ServerOs::Windows,
        ..TrackerConfig::default()
    };
    let col = &wire.findings_with(config).collisions[0];
    assert_eq!((col.prediction, col.prediction_agrees), (None, None));
}

/// Random balancer traffic: a few ports cycled toward two servers, each connection closed by
/// either side, some SYNs rejected, some never answered.
fn random_wire(seed: u64, connections: u32) -> Vec<TcpSegment> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |n: u32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % u64::from(n)) as u32
    };
    let mut all = Vec::new();
    let mut at = 100.0;
    for i in 0..connections {
        at += f64::from(next(400)) / 1000.0;
        let mut wire = Wire::new(41000 + next(1500) as u16);
        wire.server.0 = IpAddr::from([10, 1, 0, 10 + next(2) as u8]);
        let c = next(1 << 30);
        match next(10) {
            0 => {
                wire.seg(at, From::Client, SYN, c, 0, 0, None);
            }
            1 => {
                wire.seg(at, From::Client, SYN, c, 0, 0, None)
                    .seg(
                        at + 0.0001,
                        From::Server,
                        ACK,
                        next(1 << 30),
                        next(1 << 30),
                        0,
                        None,
                    )
                    .seg(at + 0.0002, From::Client, RST, c, 0, 0, None);
            }
            k => {
                let closer = if k % 2 == 0 {
                    From::Server
                } else {
                    From::Client
                };
                wire.connection(at, c, next(1 << 30), closer, Some(i * 10));
            }
        }
        all.extend(wire.segments);
    }
    all.sort_by_key(|s| s.ts_ns);
    all
}

/// Everything a run finds, as text: records and counters.
fn everything(f: &Findings) -> String {
    format!("{:?}\n{:?}\n{:?}", f.connections, f.collisions, f.counters)
}

/// With a budget far too small, so that sweeps and evictions of every class happen between
/// stretches: 1, 2 and 7 shards find exactly the same.
#[test]
fn findings_under_memory_pressure_do_not_depend_on_the_number_of_shards() {
    for seed in 1..=12 {
        let segments = random_wire(seed, 3_000);
        let config = TrackerConfig {
            max_memory: 96 << 10,
            idle_timeout_ns: 30 * SECOND_NS,
            ..TrackerConfig::default()
        };
        let one = Findings::of_segments_in_stretches(&config, &segments, 1, 500);
        assert!(
            one.counters.memory_evictions > 0,
            "seed {seed}: no pressure"
        );
        let expected = everything(&one);
        for shards in [2, 7] {
            let f = Findings::of_segments_in_stretches(&config, &segments, shards, 500);
            assert_eq!(everything(&f), expected, "seed {seed}, {shards} shards");
        }
    }
}

/// The live count of a source's tuples: open while a connection is, then held in TIME_WAIT by
/// whichever side closed first, until the TIME_WAIT ends on the capture's clock.
#[test]
fn occupancy_counts_a_sources_tuples_open_and_in_time_wait() {
    let mut server_closes = Wire::new(40200);
    server_closes.connection(100.0, 1000, 5000, From::Server, None);
    let mut client_closes = Wire::new(40201);
    client_closes.connection(100.5, 3000, 7000, From::Client, None);
    let mut open = Wire::new(40202);
    open.seg(101.0, From::Client, SYN, 9000, 0, 0, None);
    let mut clock = Wire::new(40203);
    let mut occupancy_at = |at_s: f64| {
        let mut tracker = ShardedTracker::new(&TrackerConfig::default(), 3);
        let mut stretch = Partitioned::new(tracker.shards());
        let mut all: Vec<TcpSegment> = [&server_closes, &client_closes, &open]
            .iter()
            .flat_map(|w| w.segments.clone())
            .collect();
        // A segment on another tuple moves the capture's clock.
        clock.segments.clear();
        clock.seg(at_s, From::Client, SYN, 1, 0, 0, None);
        all.extend(clock.segments.clone());
        all.sort_by_key(|s| s.ts_ns);
        for (index, seg) in all.into_iter().enumerate() {
            stretch.push(index as u64, seg);
        }
        tracker.process(&stretch);
        tracker.occupancy()
    };
    let [(source, early)] = occupancy_at(102.0)[..] else {
        panic!("one source")
    };
    assert_eq!(source, "10.0.0.1".parse::<IpAddr>().unwrap());
    // The two SYNs not answered (the open connection and the clock's) are open.
    assert_eq!(
        (early.open, early.time_wait_server, early.time_wait_client),
        (2, 1, 1)
    );
    let late = occupancy_at(170.0)[0].1;
    assert_eq!((late.time_wait_server, late.time_wait_client), (0, 0));
}

/// The same random traffic seen on two VLANs (both legs of a bridge, the second 1 µs later):
/// each view is followed on its own and the two joined, so the records are those of one view
/// with the other as evidence; and under memory pressure 1, 2 and 7 shards find exactly the
/// same.
#[test]
fn views_on_two_vlans_join_the_same_on_any_number_of_shards() {
    for seed in 1..=6 {
        let one_leg = random_wire(seed, 2_000);
        let mut both_legs: Vec<TcpSegment> = one_leg
            .iter()
            .flat_map(|s| {
                let leg = |vlan: u16, delay_ns: i64| TcpSegment {
                    ts_ns: s.ts_ns + delay_ns,
                    vantage: twsleuth_decode::Vantage {
                        outer_vlan: vlan,
                        ..s.vantage
                    },
                    ..*s
                };
                [leg(10, 0), leg(20, 1_000)]
            })
            .collect();
        both_legs.sort_by_key(|s| s.ts_ns);
        let roomy = TrackerConfig::default();
        let alone = Findings::of_segments_in_stretches(&roomy, &one_leg, 1, 500);
        let one = Findings::of_segments_in_stretches(&roomy, &both_legs, 1, 500);
        assert_eq!(one.collisions.len(), alone.collisions.len(), "seed {seed}");
        assert_eq!(
            one.connections.len(),
            alone.connections.len(),
            "seed {seed}"
        );
        assert_eq!(one.counters.syn, alone.counters.syn, "seed {seed}");
        assert_eq!(one.counters.duplicate_segments, 0, "seed {seed}");
        let joined = one.connections.iter().filter(|c| !c.other_views.is_empty());
        assert_eq!(
            joined.count() as u64,
            one.counters.joined_views,
            "seed {seed}"
        );
        assert!(one.counters.joined_views > 0, "seed {seed}");
        for c in &one.collisions {
            assert_eq!(c.view.vantage.outer_vlan, 10, "seed {seed}");
            assert_eq!(c.other_views.len(), 1, "seed {seed}");
            assert_eq!(c.other_views[0].view.vantage.outer_vlan, 20, "seed {seed}");
        }
        let config = TrackerConfig {
            max_memory: 192 << 10,
            idle_timeout_ns: 30 * SECOND_NS,
            ..TrackerConfig::default()
        };
        let pressed = Findings::of_segments_in_stretches(&config, &both_legs, 1, 500);
        assert!(pressed.counters.memory_evictions > 0, "seed {seed}");
        let expected = everything(&pressed);
        for shards in [2, 7] {
            let f = Findings::of_segments_in_stretches(&config, &both_legs, shards, 500);
            assert_eq!(everything(&f), expected, "seed {seed}, {shards} shards");
        }
    }
}
