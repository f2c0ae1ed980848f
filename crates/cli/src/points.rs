//! Which inputs are captures of the same traffic at different places (a balancer's and a
//! server's), found before the analysis from the SYNs they share: each such input is a
//! capture point of its own, whose segments the tracker follows apart from the others' and
//! whose records it joins ([`TrackerConfig::capture_points`]).

use serde::Serialize;
use std::collections::HashMap;
use twsleuth_decode::Decoder;
use twsleuth_flows::{DEFAULT_VIEW_JOIN_WAIT_NS, TrackerConfig, TupleKey, endpoints};
use twsleuth_reader::{CaptureReader, MergedCaptures};

/// SYNs read from the start of each input to find the inputs that share connections: enough
/// for hundreds of matches between two views of busy traffic, and a bounded cost.
const SAMPLED_SYNS: usize = 20_000;
/// Frames read at most from each input for that.
const SAMPLED_FRAMES: u64 = 500_000;
/// Inputs beyond which none is read twice: a ring or a per-core set of that many files is one
/// capture point, and reading the start of each again would cost more than it could show.
const MAX_COMPARED_INPUTS: usize = 16;
/// SYNs two inputs must share to be two views of the same traffic.
const MIN_SHARED_SYNS: usize = 3;

/// How the inputs were grouped into capture points.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CapturePoints {
    /// The capture point of each input, by input index.
    pub of_input: Vec<u8>,
    /// Pairs of inputs (by index) that share connections: the second is a capture point of
    /// its own (or the same point as the first, when every shared SYN has the same time in
    /// both: the same capture twice).
    pub shared: Vec<SharedSyns>,
    /// Inputs that share no connection with any other (of two or more): analysed side by side
    /// with them (the files of a ring, another server's capture).
    pub side_by_side: Vec<u16>,
}

/// Two inputs that hold the same SYNs.
#[derive(Clone, Debug, Serialize)]
pub struct SharedSyns {
    /// The earlier input.
    pub input: u16,
    /// The later input.
    pub other: u16,
    /// SYNs (4-tuple and ISN) found in both.
    pub syns: u64,
    /// Median of the later's SYN time minus the earlier's: a first estimate of the offset.
    pub median_difference_ns: i64,
}

impl CapturePoints {
    /// Reads the first SYNs of each input again and groups the inputs: an input joins the
    /// first capture point none of whose inputs holds its SYNs (the files of a ring, or the
    /// per-core captures of one balancer, share none), else starts one. Standard input cannot
    /// be read twice: it is point 0; so is every input of more than [`MAX_COMPARED_INPUTS`].
    pub fn find(merged: &MergedCaptures) -> CapturePoints {
        let members = merged.set().members();
        let mut points = CapturePoints {
            of_input: vec![0; members.len()],
            ..CapturePoints::default()
        };
        if members.len() < 2 || members.len() > MAX_COMPARED_INPUTS {
            return points;
        }
        let syns: Vec<HashMap<(TupleKey, u32), i64>> = members
            .iter()
            .enumerate()
            .map(|(index, member)| {
                if !member.can_reopen() {
                    return HashMap::new();
                }
                CaptureReader::open_source(member, index as u16, false, 1 << 20)
                    .map(|mut reader| first_syns(&mut reader))
                    .unwrap_or_default()
            })
            .collect();
        let mut shares_any = vec![false; members.len()];
        // Per point, its inputs.
        let mut groups: Vec<Vec<usize>> = vec![vec![0]];
        for later in 1..members.len() {
            let mut shares_with = vec![false; groups.len()];
            for earlier in 0..later {
                let mut differences: Vec<i64> = syns[later]
                    .iter()
                    .filter_map(|(key, ts)| Some(ts - syns[earlier].get(key)?))
                    .collect();
                if differences.len() < MIN_SHARED_SYNS {
                    continue;
                }
                shares_any[earlier] = true;
                shares_any[later] = true;
                let middle = differences.len() / 2;
                let median = *differences.select_nth_unstable(middle).1;
                points.shared.push(SharedSyns {
                    input: earlier as u16,
                    other: later as u16,
                    syns: differences.len() as u64,
                    median_difference_ns: median,
                });
                // The same frames twice (one capture given twice, a copy): one point, whose
                // repeated frames are duplicates.
                if differences.iter().any(|&d| d != 0) {
                    let group = usize::from(points.of_input[earlier]);
                    shares_with[group] = true;
                }
            }
            let point = match shares_with.iter().position(|shares| !shares) {
                Some(point) => point,
                None => {
                    groups.push(Vec::new());
                    groups.len() - 1
                }
            };
            groups[point].push(later);
            points.of_input[later] = u8::try_from(point).unwrap_or(u8::MAX);
        }
        points.side_by_side = (0..members.len())
            .filter(|&input| !shares_any[input])
            .map(|input| input as u16)
            .collect();
        points
    }

    /// The tracker configuration for these points: each input's point, and a wait for the
    /// records of the other views that covers the offsets between their clocks.
    pub fn configure(&self, config: &mut TrackerConfig) {
        if self.of_input.iter().all(|&point| point == 0) {
            return;
        }
        config.capture_points = self.of_input.clone();
        let largest_offset = self
            .shared
            .iter()
            .map(|s| s.median_difference_ns.saturating_abs())
            .max()
            .unwrap_or(0);
        config.view_join_wait_ns = DEFAULT_VIEW_JOIN_WAIT_NS.saturating_add(largest_offset);
    }
}

/// The first [`SAMPLED_SYNS`] SYNs of a capture: (4-tuple, ISN) and time.
fn first_syns(reader: &mut CaptureReader) -> HashMap<(TupleKey, u32), i64> {
    let mut decoder = Decoder::default();
    let mut syns = HashMap::new();
    let mut frames = 0;
    while syns.len() < SAMPLED_SYNS && frames < SAMPLED_FRAMES && reader.advance() {
        frames += 1;
        let Some(frame) = reader.current() else {
            break;
        };
        let Ok(seg) = decoder.decode(&frame) else {
            continue;
        };
        if seg.flags.is_syn_only() {
            let (src, dst) = endpoints(&seg);
            let key = TupleKey::new(src, dst);
            syns.entry((key, seg.seq)).or_insert(seg.ts_ns);
        }
    }
    syns
}
