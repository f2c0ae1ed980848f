//! How long each endpoint keeps TIME_WAIT, and the tracker's memory bounds.

use std::net::IpAddr;

use serde::Serialize;

/// One second in nanoseconds.
pub const SECOND_NS: i64 = 1_000_000_000;

/// TCP stacks with a known TIME_WAIT duration (DESIGN.md section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerOs {
    /// `TCP_TIMEWAIT_LEN`, 60 s, not tunable.
    Linux,
    /// `TcpTimedWaitDelay` default, 120 s (240 s before Windows Server 2008 R2... 2012).
    Windows,
    /// 2 × MSL = 2 × 30 s.
    Freebsd,
    /// 2 × MSL = 2 × 15 s.
    Macos,
}

impl ServerOs {
    /// The stack's TIME_WAIT duration.
    pub fn time_wait_ns(self) -> i64 {
        match self {
            ServerOs::Linux | ServerOs::Freebsd => 60 * SECOND_NS,
            ServerOs::Windows => 120 * SECOND_NS,
            ServerOs::Macos => 30 * SECOND_NS,
        }
    }
}

/// The default [`TrackerConfig::view_join_wait_ns`]: a closed connection is compacted (its
/// record leaves) 4 s after its last segment, found by a sweep every 5 s; twice that covers
/// two views of a connection ending a few milliseconds apart, as on the two legs of a
/// bridge. Capture points add their clock offset to it.
pub const DEFAULT_VIEW_JOIN_WAIT_NS: i64 = 20 * SECOND_NS;

/// TIME_WAIT durations: one for everybody, with per-host overrides.
#[derive(Clone, Debug, Serialize)]
pub struct TimeWaitPolicy {
    /// Duration for hosts without an override.
    pub default_ns: i64,
    /// Per-host durations (`--time-wait-for 10.1.0.10=120s`).
    pub per_host: Vec<(IpAddr, i64)>,
    /// Slack after the nominal end during which a SYN counts as an edge case, decided by the
    /// server's answer: Linux's timer wheel ends a 60 s TIME_WAIT 60.0–62.05 s after it began
    /// (measured on HZ=250, DESIGN.md section 2).
    pub edge_slack_ns: i64,
}

impl Default for TimeWaitPolicy {
    fn default() -> Self {
        TimeWaitPolicy {
            default_ns: ServerOs::Linux.time_wait_ns(),
            per_host: Vec::new(),
            edge_slack_ns: 2_500_000_000,
        }
    }
}

impl TimeWaitPolicy {
    /// How long `host` keeps a tuple in TIME_WAIT.
    pub fn duration_ns(&self, host: IpAddr) -> i64 {
        self.per_host
            .iter()
            .find(|(ip, _)| *ip == host)
            .map_or(self.default_ns, |(_, ns)| *ns)
    }

    /// The longest TIME_WAIT any host keeps, slack included: how long a closed tuple must be
    /// remembered.
    pub fn longest_ns(&self) -> i64 {
        self.per_host
            .iter()
            .map(|(_, ns)| *ns)
            .fold(self.default_ns, i64::max)
            + self.edge_slack_ns
    }
}

/// Which parts of a segment's vantage (its VLAN tags and tunnel, DESIGN.md section 5) belong to
/// its flow key (`--split-by`). Kept apart, the same 4-tuple on two VLANs (a SPAN of both legs
/// of a bridge-mode balancer) or in two tunnels (two tenants' overlapping addresses) is two
/// views followed on their own, joined afterwards where they are one connection; put
/// together, a frame seen on both legs is a duplicate of the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SplitBy {
    /// VLAN ids (outer and inner tag).
    pub vlan: bool,
    /// Tunnel kind and id (VNI, ERSPAN session, GRE key, ...).
    pub tunnel: bool,
}

impl Default for SplitBy {
    fn default() -> Self {
        SplitBy {
            vlan: true,
            tunnel: true,
        }
    }
}

/// Configuration of the flow tracker.
#[derive(Clone, Debug, Serialize)]
pub struct TrackerConfig {
    /// The servers' TCP stack: its TIME_WAIT rules. The Linux prediction
    /// (`tcp_timewait_state_process`) is made only where this is Linux.
    pub server_os: ServerOs,
    /// TIME_WAIT durations.
    pub time_wait: TimeWaitPolicy,
    /// An open connection with no segment for this long (capture time) is evicted.
    pub idle_timeout_ns: i64,
    /// Memory the analysis may take, in bytes: the tuple table of all shards together takes
    /// at most a quarter (its estimate counts entries, not the table's spare buckets), what
    /// one stretch of input can add before the next check at most an eighth
    /// ([`crate::ShardedTracker::stretch_segments`]), and the rest is left to the reading, the
    /// records on their way out and the allocator (mimalloc keeps some 60 MiB of freed pages
    /// under a SYN flood). Beyond, tuples are evicted in this order: failing attempts, tuples
    /// whose TIME_WAIT is over, open connections (least recently active first), and only then
    /// tuples still in TIME_WAIT, each of which is counted (`time_wait_evictions`: the
    /// collisions found are then a lower bound). The budget is checked between stretches of
    /// input, on the capture's clock, so the findings do not depend on the number of shards.
    /// Records leave the tracker as their incarnations end.
    pub max_memory: usize,
    /// What of a segment's vantage is part of its flow key.
    pub split_by: SplitBy,
    /// The capture point of each input (by `file_index`): inputs that saw the same traffic
    /// at different places (a balancer's and a server's capture) are different points, and
    /// each point's segments are followed on their own; inputs beyond the list are point 0.
    /// Empty: one point.
    #[serde(skip)]
    pub capture_points: Vec<u8>,
    /// How long (capture time) the record of a connection seen in one view waits for those
    /// of its other views before it leaves: the views end it at times apart by their clock
    /// offset and the sweeps' period ([`ShardedTracker`](crate::ShardedTracker)).
    #[serde(skip)]
    pub view_join_wait_ns: i64,
    /// Keep, with every tuple, its latest few segments, and with every collision the packets
    /// of its ladder ([`crate::CollisionLadder`]): what a report shows of the collisions it
    /// picks, without reading its inputs again. Off, the tracker keeps no packet.
    #[serde(skip)]
    pub ladders: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            server_os: ServerOs::Linux,
            time_wait: TimeWaitPolicy::default(),
            idle_timeout_ns: 300 * SECOND_NS,
            max_memory: 256 << 20,
            split_by: SplitBy::default(),
            capture_points: Vec::new(),
            view_join_wait_ns: DEFAULT_VIEW_JOIN_WAIT_NS,
            ladders: false,
        }
    }
}
