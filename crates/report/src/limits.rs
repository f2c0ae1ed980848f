//! What the evidence cannot show: every gap in what was captured, decoded or kept, named and
//! counted, and read before the verdict speaks (Zeek's `weird.log`: anomalies are data, not
//! footnotes). A gap that could hide a collision forbids an all-clear.

use serde::Serialize;
use twsleuth_decode::Accounting;
use twsleuth_flows::{Role, ServerOs, Summary, TrackerCounters};

use crate::InputFile;
use crate::exhaustion::PortExhaustion;
use crate::time::format_utc;
use crate::words::{count, duration};

/// Time with no frame at all, in a capture with frames before and after, from which a gap is
/// reported: longer than the slack of a TIME_WAIT's end and than any retry after a rejection.
pub const TIME_GAP_NS: i64 = 5_000_000_000;
/// Share of the frames or connections (1 in this many) above which damaged, cut or lost
/// packets could hide a collision.
const NOTICEABLE_SHARE: u64 = 100;

/// A stretch of capture time with no frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TimeGap {
    /// The last frame before the gap, ns since the epoch.
    pub start_ns: i64,
    /// Its length.
    pub length_ns: i64,
}

/// What the reading of the inputs showed, beyond the frames.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureFacts {
    /// Where every frame went.
    pub accounting: Accounting,
    /// Reading was interrupted (Ctrl-C).
    pub interrupted: bool,
    /// Gaps of at least [`TIME_GAP_NS`] with no frame.
    pub time_gaps: u64,
    /// The longest of them.
    pub longest_time_gap: Option<TimeGap>,
    /// The servers' stack assumed (`--server-os`).
    pub server_os: Option<ServerOs>,
    /// The last frame's time, of any kind.
    pub last_frame_ns: Option<i64>,
}

/// One thing the evidence cannot show.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Limit {
    /// A stable name: `direction_missing`, `time_wait_evicted`, …
    pub kind: &'static str,
    /// How many frames, connections, tuples or inputs it concerns.
    pub count: u64,
    /// It could hide a collision: no all-clear may be given.
    pub blocks_all_clear: bool,
    /// What it means, in one or two sentences.
    pub text: String,
}

/// Everything the evidence cannot show, and whether it still supports an all-clear.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Completeness {
    /// No limit could hide a collision.
    pub complete: bool,
    /// The limits, most serious first.
    pub cannot_show: Vec<Limit>,
}

impl Completeness {
    /// The limits that forbid an all-clear.
    pub fn blocking(&self) -> impl Iterator<Item = &Limit> {
        self.cannot_show.iter().filter(|l| l.blocks_all_clear)
    }

    /// The limits of these results: from the findings' figures, the tracker's counters, the
    /// inputs and what their reading showed.
    pub fn of(
        summary: &Summary,
        counters: &TrackerCounters,
        inputs: &[InputFile],
        facts: &CaptureFacts,
    ) -> Completeness {
        let mut limits = Vec::new();
        let mut add = |kind, count, blocks_all_clear, text: String| {
            limits.push(Limit {
                kind,
                count,
                blocks_all_clear,
                text,
            });
        };
        let accounting = &facts.accounting;
        if facts.interrupted {
            add(
                "interrupted",
                accounting.frames,
                true,
                format!(
                    "Reading was interrupted after {} frames: the rest of the input was not analysed.",
                    count(accounting.frames)
                ),
            );
        }
        for input in inputs {
            match &input.damage {
                Some(damage) if input.frames == 0 => add(
                    "input_unreadable",
                    1,
                    true,
                    format!("No frame could be read from {damage}."),
                ),
                // A file that ends inside a record may be a writer stopped mid-record, or a
                // copy cut short: the file cannot tell which, so nothing after it is vouched
                // for and no all-clear rests on it.
                Some(damage) => add(
                    "input_damaged",
                    1,
                    true,
                    format!(
                        "{damage}: {} frames were read before the damage{}.",
                        count(input.frames),
                        if input.damage_cut_short {
                            "; the file ends there, and whether the capture went on after it (a copy cut short) or stopped (tcpdump killed mid-record) the file cannot tell"
                        } else {
                            ", anything after it is lost"
                        }
                    ),
                ),
                None => {}
            }
        }
        if accounting.tcp_segments == 0 {
            add(
                "no_tcp",
                0,
                true,
                format!(
                    "No TCP segment was found in {} frames: there was nothing to check.",
                    count(accounting.frames)
                ),
            );
        }
        let directions = &summary.directions;
        let mostly_one_sided = directions.mostly_missing().is_some();
        for (input, by_input) in summary
            .directions_by_input
            .iter()
            .map(|d| (d.input, &d.directions))
        {
            let name = inputs
                .get(usize::from(input))
                .map_or_else(|| format!("input {input}"), |i| i.name.clone());
            let total = by_input.total();
            if by_input.responder_only > 0 {
                add(
                    "direction_missing",
                    by_input.responder_only,
                    mostly_one_sided,
                    format!(
                        "In {name}, {} of {} connections show only the responders' segments (the originators' are missing): each SYN is inferred from its answer and its time estimated, and a SYN the server ignored leaves no trace.",
                        count(by_input.responder_only),
                        count(total)
                    ),
                );
            }
            if by_input.originator_only > 0 {
                add(
                    "direction_missing",
                    by_input.originator_only,
                    mostly_one_sided,
                    format!(
                        "In {name}, {} of {} connections show only the originators' segments (the responders' are missing): who closed first and each SYN's outcome are inferred from what the originator sent next, and are unknown where it sent nothing.",
                        count(by_input.originator_only),
                        count(total)
                    ),
                );
            }
        }
        if counters.time_wait_evictions > 0 {
            add(
                "time_wait_evicted",
                counters.time_wait_evictions,
                true,
                format!(
                    "{} tuples still in TIME_WAIT were evicted to stay within --max-memory: a SYN on one of them afterwards went unchecked, so the collisions found are a lower bound. Run again with a larger --max-memory.",
                    count(counters.time_wait_evictions)
                ),
            );
        }
        let open_evicted = counters.memory_evictions - counters.time_wait_evictions;
        if open_evicted > 0 {
            add(
                "state_evicted",
                open_evicted,
                false,
                format!(
                    "{} tuples outside TIME_WAIT (open connections, failed attempts, tuples remembered for their reuse interval) were evicted to stay within --max-memory: later segments on them started new, midstream connections, and a port reuse on them was not measured.",
                    count(open_evicted)
                ),
            );
        }
        if summary.bytes_not_captured > 0 {
            add(
                "packets_not_captured",
                summary.bytes_not_captured,
                summary.bytes_not_captured * NOTICEABLE_SHARE > summary.connections,
                format!(
                    "In {} connections a side acknowledged bytes the capture does not hold: the capture dropped packets, and a dropped SYN or answer is missing from the findings.",
                    count(summary.bytes_not_captured)
                ),
            );
        }
        if accounting.truncated > 0 {
            add(
                "truncated",
                accounting.truncated,
                accounting.truncated * NOTICEABLE_SHARE > accounting.frames,
                format!(
                    "{} frames were cut by the snaplen before their TCP header ended: their segments are missing.",
                    count(accounting.truncated)
                ),
            );
        }
        if accounting.malformed > 0 {
            add(
                "malformed",
                accounting.malformed,
                accounting.malformed * NOTICEABLE_SHARE > accounting.frames,
                format!(
                    "{} frames had inconsistent headers and were not decoded.",
                    count(accounting.malformed)
                ),
            );
        }
        let short = accounting.tcp_from_short_frames;
        let cut = accounting.tcp_from_truncated_frames - short;
        if cut > 0 {
            add(
                "snaplen",
                cut,
                false,
                format!(
                    "{} TCP segments come from frames cut by the snaplen after their TCP headers: only payload bytes, which the analysis does not need, are missing (lengths come from the IP headers).",
                    count(cut)
                ),
            );
        }
        if short > 0 {
            add(
                "short_frames",
                short,
                false,
                format!(
                    "{} TCP segments come from frames shorter than their IP length although recorded as uncut (a capture device or mirror session cut them, or the IP length is wrong): their TCP headers were whole and were used.",
                    count(short)
                ),
            );
        }
        let undecoded = accounting.undecoded_link_types.total();
        if undecoded > 0 {
            let types: Vec<String> = accounting
                .undecoded_link_types
                .iter()
                .map(|(link_type, frames)| {
                    format!("{} on link type {}", count(frames), link_type.0)
                })
                .collect();
            add(
                "link_type_not_decoded",
                undecoded,
                undecoded * 2 > accounting.frames,
                format!(
                    "{} frames are on link types twsleuth does not decode ({}{}): any TCP in them is not in the findings.",
                    count(undecoded),
                    types.join(", "),
                    if accounting.undecoded_link_types.other_link_types() > 0 {
                        ", and others"
                    } else {
                        ""
                    }
                ),
            );
        }
        if accounting.unknown_encapsulation > 0 {
            add(
                "encapsulation_not_decoded",
                accounting.unknown_encapsulation,
                accounting.unknown_encapsulation * 2 > accounting.frames,
                format!(
                    "{} frames are in a tunnel (GRE, ERSPAN, VXLAN, Geneve, GTP-U, MPLS, PPPoE) whose payload twsleuth does not read: any TCP in them is not in the findings.",
                    count(accounting.unknown_encapsulation)
                ),
            );
        }
        let reassembly = &accounting.reassembly;
        if reassembly.expired + reassembly.dropped_over_cap > 0 {
            add(
                "fragments_lost",
                reassembly.expired + reassembly.dropped_over_cap,
                false,
                format!(
                    "{} IP datagrams whose TCP header was split across fragments could not be put together (a fragment missing, or too many pending): their segments are missing.",
                    count(reassembly.expired + reassembly.dropped_over_cap)
                ),
            );
        }
        if let Some(longest) = facts.longest_time_gap {
            add(
                "time_gap",
                facts.time_gaps,
                false,
                format!(
                    "The capture has {} gaps of {} or more with no frame (the longest, {}, after {}): connections that ended in a gap left no TIME_WAIT in the findings.",
                    count(facts.time_gaps),
                    duration(TIME_GAP_NS),
                    duration(longest.length_ns),
                    format_utc(longest.start_ns)
                ),
            );
        }
        if summary.midstream > 0 {
            add(
                "midstream",
                summary.midstream,
                false,
                format!(
                    "{} connections were already under way when the capture began (no SYN or SYN-ACK): their roles are guessed from the ports, and a TIME_WAIT they left is named by the FIN order alone.",
                    count(summary.midstream)
                ),
            );
        }
        if counters.idle_evictions > 0 {
            add(
                "idle_evicted",
                counters.idle_evictions,
                false,
                format!(
                    "{} connections idle longer than --idle-timeout were ended in the findings (close: evicted); a later segment started a new, midstream connection.",
                    count(counters.idle_evictions)
                ),
            );
        }
        let c = &summary.collisions;
        if c.inferred > 0 {
            add(
                "inferred",
                c.inferred,
                false,
                format!(
                    "{} of the {} collisions are inferred from one direction of the traffic (`inferred` and the frames in `basis` in the collisions export).",
                    count(c.inferred),
                    count(c.total)
                ),
            );
        }
        if c.unknown > 0 {
            add(
                "outcome_unknown",
                c.unknown,
                false,
                format!(
                    "For {} collisions the captured direction shows nothing after the SYN: their outcome is unknown.",
                    count(c.unknown)
                ),
            );
        }
        if let Some(os) = facts.server_os.filter(|&os| os != ServerOs::Linux) {
            add(
                "prediction_not_checked",
                0,
                false,
                format!(
                    "The servers are taken to run {} (--server-os): their TIME_WAIT lasts {}, and the Linux prediction (`tcp_timewait_state_process`) is not checked against their answers.",
                    crate::tables::label(&os),
                    duration(os.time_wait_ns())
                ),
            );
        }
        limits.sort_by_key(|l| !l.blocks_all_clear);
        Completeness {
            complete: limits.iter().all(|l| !l.blocks_all_clear),
            cannot_show: limits,
        }
    }
}

/// Who is missing from a capture that mostly shows one direction, in words.
pub fn missing_direction_words(missing: Role) -> &'static str {
    match missing {
        Role::Orig => "only the responders' (servers') segments; the originators' are missing",
        Role::Resp => {
            "only the originators' (balancers' or clients') segments; the responders' are missing"
        }
    }
}

/// What a run found, as its exit status says (documented in `twsleuth --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No collision, and nothing that could hide one: exit status 0.
    Clear,
    /// TIME_WAIT collisions found (possibly a lower bound), or a balancer's ports all held in
    /// its own TIME_WAIT: exit status 1.
    Found,
    /// No collision found, but the evidence could hide one: exit status 3.
    Incomplete,
}

impl Status {
    /// The status of these results.
    pub fn of(
        summary: &Summary,
        completeness: &Completeness,
        exhaustion: &[PortExhaustion],
    ) -> Status {
        if summary.collisions.total > 0 || !exhaustion.is_empty() {
            Status::Found
        } else if completeness.complete {
            Status::Clear
        } else {
            Status::Incomplete
        }
    }

    /// The process exit status.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Clear => 0,
            Status::Found => 1,
            Status::Incomplete => 3,
        }
    }
}
