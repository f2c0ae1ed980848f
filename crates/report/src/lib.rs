//! Incident report: tables, exports, charts and the postmortem document, built from the flow
//! tracker's findings (never from packets).
//!
//! - [`stream::export_records`]: connection and collision records streamed off disk in order,
//!   a chunk at a time, into the exports ([`export`]: Parquet through arrow-rs's low-level writer,
//!   CSV in the same columns) and the [`stream::RecordDigest`] the rest is made from (a per-second timeline,
//!   the charts' sample, the collisions to show), in memory that does not grow with the
//!   capture.
//! - [`analysis`] decides what the findings mean (the verdict `analyze` prints too, who holds
//!   the TIME_WAIT, the refusals' reasons, the capacity model, the timeline's events), and
//!   [`evidence`] which collisions to show packet by packet and what each packet means.
//! - The renderers only lay that out: [`content::document`] as the postmortem's sections,
//!   which [`document`] writes as Markdown and as self-contained HTML (escaping everything
//!   that came from a capture); [`charts`] as SVG, one module per chart; [`export`] as Parquet
//!   and CSV. [`words`] writes numbers one way for all of them.
#![deny(missing_docs)]

pub mod analysis;
pub mod charts;
pub mod content;
pub mod document;
pub mod evidence;
pub mod exhaustion;
pub mod export;
pub mod files;
pub mod limits;
pub mod spill;
pub mod stream;
pub mod tables;
pub mod time;
pub mod words;
mod write;

pub use write::write_report;

use serde::Serialize;
use twsleuth_decode::Accounting;
use twsleuth_flows::{CollisionRecord, Role, Summary, TimeWaitPolicy, TrackerCounters};

/// One input capture, as the method section lists it.
#[derive(Clone, Debug, Serialize)]
pub struct InputFile {
    /// The name the user gave (a member of a set: `dir/cap.pcap7`, `a.tgz:core3.pcap`).
    #[serde(rename = "input")]
    pub name: String,
    /// SHA-256 of the file's bytes, hex; `None` for standard input.
    pub sha256: Option<String>,
    /// Frames read.
    pub frames: u64,
    /// Frames earlier than the frame before them in the file.
    pub out_of_order_frames: u64,
    /// Where the file went bad, if it did.
    pub damage: Option<String>,
    /// The damage is only the file ending inside a record: a tcpdump killed or a full disk
    /// (nothing after it was captured), or a copy cut short (the rest is lost); the file
    /// cannot tell which.
    pub damage_cut_short: bool,
    /// How a BIG-IP captured the file (its F5 fileinfo pseudo-packet: tcpdump command,
    /// version, host, platform), when it says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_by: Option<twsleuth_decode::F5FileInfo>,
}

/// One segment of an evidence ladder.
#[derive(Clone, Debug, Serialize)]
pub struct LadderStep {
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// Wireshark frame number, in input `file_index`.
    pub frame: u64,
    /// The input the frame is in: the collision's (its first SYN's), but for the previous
    /// connection's frames when it ended in the file before, in a set of files.
    pub file_index: u16,
    /// Sender's role in the new connection.
    pub from: Role,
    /// Flags, Wireshark letters.
    pub flags: String,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Payload bytes.
    pub payload_len: u32,
    /// TSval of its timestamps option (RFC 7323 section 3), when it carried one: PAWS compares
    /// a SYN's with the TIME_WAIT's `ts_recent`.
    pub tsval: Option<u32>,
    /// TSecr, when the segment carried timestamps and ACK (RFC 7323 section 3: without ACK
    /// it is not meaningful): a TIME_WAIT's bare ACK echoes its `ts_recent` here.
    pub tsecr: Option<u32>,
    /// What the segment means here ("bare ACK with the old numbers", …).
    pub note: String,
}

/// A collision shown with its packets.
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    /// "First collision", "Worst collision", …
    pub label: String,
    /// The collision.
    pub collision: CollisionRecord,
    /// The end of the previous connection and the new handshake, in capture order.
    pub steps: Vec<LadderStep>,
}

/// What an F5 BIG-IP's Ethernet trailers said, for the key figures. Names are capture text:
/// the renderers escape them.
#[derive(Clone, Debug, Default)]
pub struct F5Facts {
    /// Virtual servers, busiest first: name, SYNs, RSTs.
    pub virtual_servers: Vec<(String, u64, u64)>,
    /// The RST causes of the resets on the collisions' tuples: cause, collisions.
    pub rst_causes: Vec<(String, u64)>,
}

/// Everything a report is made from.
pub struct ReportInput<'a> {
    /// What the records showed, gathered as they streamed to the exports.
    pub records: &'a stream::RecordDigest,
    /// The tracker's counters.
    pub counters: &'a TrackerCounters,
    /// Key figures of the findings.
    pub summary: &'a Summary,
    /// Where every frame went.
    pub accounting: &'a Accounting,
    /// TIME_WAIT durations assumed.
    pub policy: &'a TimeWaitPolicy,
    /// The inputs, in the order given.
    pub inputs: Vec<InputFile>,
    /// Collisions to show packet by packet.
    pub evidence: Vec<Evidence>,
    /// What the evidence cannot show.
    pub completeness: &'a limits::Completeness,
    /// Sources that ran out of ports in their own TIME_WAIT.
    pub exhaustion: &'a [exhaustion::PortExhaustion],
    /// What an F5 BIG-IP's trailers said (empty without trailers).
    pub f5: F5Facts,
    /// How several inputs were put together: capture points and their clocks, inputs analysed
    /// side by side (empty for one input).
    pub capture_points: Vec<String>,
    /// twsleuth's version (no wall-clock time: reports are deterministic).
    pub tool_version: &'a str,
}
