//! What the time ranges of a set of captures show about what they missed: silences between
//! consecutive files, files that overlap, and tcpdump rings that wrapped (their oldest files
//! overwritten) or lack a file. Evidence for "what this capture cannot show".

use crate::capture::CaptureReader;
use crate::set::natural_cmp;

/// A silence between two consecutive files is a gap only when it is longer than this and than
/// the longest silence inside either file: a quiet link is not a lost file, and a busy one
/// whose frames come every few microseconds does not fall silent for a tenth of a second
/// between two files of a ring unless something is missing.
pub const GAP_FLOOR_NS: i64 = 100_000_000;

/// The time range of one capture that has frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// The capture's input index (its frames' `file_index`).
    pub file_index: u16,
    /// The capture's name.
    pub name: String,
    /// Frames read.
    pub frames: u64,
    /// Its first frame's timestamp (ns since the epoch).
    pub first_ts_ns: i64,
    /// Its last frame's timestamp.
    pub last_ts_ns: i64,
    /// The longest time between two of its consecutive frames.
    pub max_gap_ns: i64,
}

/// How two files, consecutive in time, meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meeting {
    /// The second starts about when the first ends.
    Contiguous,
    /// No frame for longer than [`GAP_FLOOR_NS`] and than any silence inside either file.
    Gap,
    /// The second starts before the first ends.
    Overlap,
}

/// Two files consecutive in time (ordered by first frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Index in [`CaptureSetReport::spans`] of the earlier file.
    pub from: usize,
    /// Index in [`CaptureSetReport::spans`] of the later file.
    pub to: usize,
    /// The later file's first frame minus the earlier file's last: negative for an overlap.
    pub gap_ns: i64,
    /// How they meet.
    pub meeting: Meeting,
}

/// A tcpdump ring (`-C`/`-W`: `cap.pcap0`, `cap.pcap1`, …) found among the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    /// The files' common name (`dir/cap.pcap`).
    pub name: String,
    /// Indexes in [`CaptureSetReport::spans`] of its files, in number order.
    pub files: Vec<usize>,
    /// Set when the ring wrapped: numbered order is not time order, so the newest file
    /// overwrote the oldest and what was captured before `oldest` is lost.
    pub wrapped: Option<RingWrap>,
    /// Numbers missing between the lowest and the highest (at most 50 listed).
    pub missing: Vec<u64>,
}

/// Where a wrapped ring now starts and ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingWrap {
    /// Index in [`CaptureSetReport::spans`] of the oldest file left: the capture's start is
    /// lost before its first frame.
    pub oldest: usize,
    /// Index in [`CaptureSetReport::spans`] of the newest file (the last one written).
    pub newest: usize,
}

/// Gaps, overlaps and rings of a set of captures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureSetReport {
    /// The captures that have frames, ordered by their first frame.
    pub spans: Vec<FileSpan>,
    /// Each pair of captures consecutive in that order.
    pub transitions: Vec<Transition>,
    /// tcpdump rings among them.
    pub rings: Vec<Ring>,
}

impl CaptureSetReport {
    /// The report on what the readers have read so far.
    pub fn new(readers: &[CaptureReader]) -> CaptureSetReport {
        let mut spans: Vec<FileSpan> = readers
            .iter()
            .enumerate()
            .filter_map(|(index, reader)| {
                let c = reader.counters();
                Some(FileSpan {
                    file_index: u16::try_from(index).ok()?,
                    name: reader.input().to_string(),
                    frames: c.frames,
                    first_ts_ns: c.first_ts_ns?,
                    last_ts_ns: reader.last_ts_ns()?,
                    max_gap_ns: c.max_gap_ns,
                })
            })
            .collect();
        CaptureSetReport::from_spans(std::mem::take(&mut spans))
    }

    /// The report on these time ranges.
    pub fn from_spans(mut spans: Vec<FileSpan>) -> CaptureSetReport {
        spans.sort_by_key(|s| (s.first_ts_ns, s.file_index));
        let transitions = spans
            .windows(2)
            .enumerate()
            .map(|(from, pair)| {
                let (a, b) = (&pair[0], &pair[1]);
                let gap_ns = b.first_ts_ns.saturating_sub(a.last_ts_ns);
                let meeting = if gap_ns < 0 {
                    Meeting::Overlap
                } else if gap_ns > GAP_FLOOR_NS.max(a.max_gap_ns).max(b.max_gap_ns) {
                    Meeting::Gap
                } else {
                    Meeting::Contiguous
                };
                Transition {
                    from,
                    to: from + 1,
                    gap_ns,
                    meeting,
                }
            })
            .collect();
        let rings = find_rings(&spans);
        CaptureSetReport {
            spans,
            transitions,
            rings,
        }
    }

    /// The transitions that are gaps.
    pub fn gaps(&self) -> impl Iterator<Item = &Transition> {
        self.transitions
            .iter()
            .filter(|t| t.meeting == Meeting::Gap)
    }

    /// The transitions that are overlaps.
    pub fn overlaps(&self) -> impl Iterator<Item = &Transition> {
        self.transitions
            .iter()
            .filter(|t| t.meeting == Meeting::Overlap)
    }
}

/// Splits `dir/cap.pcap12` into (`dir/`, `cap.pcap`, Some(12)); `cap.pcap` has no number
/// (tcpdump's first file of a ring without `-W`, number 0).
fn ring_name(name: &str) -> (&str, &str, Option<u64>) {
    let leaf_at = name.rfind(['/', ':']).map_or(0, |i| i + 1);
    let (container, leaf) = name.split_at(leaf_at);
    let stem_len = leaf.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, digits) = leaf.split_at(stem_len);
    (container, stem, digits.parse().ok())
}

/// Files named like one tcpdump ring that follow each other in time without overlapping; a
/// set of per-core captures (`core0.pcap`, `core1.pcap`) overlaps, and is no ring.
fn find_rings(spans: &[FileSpan]) -> Vec<Ring> {
    // (directory or archive, stem) and the ring's (number, span index) pairs.
    type Group<'a> = ((&'a str, &'a str), Vec<(u64, usize)>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        let (container, stem, number) = ring_name(&span.name);
        if stem.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(key, _)| *key == (container, stem)) {
            Some((_, files)) => files.push((number.unwrap_or(0), index)),
            None => groups.push(((container, stem), vec![(number.unwrap_or(0), index)])),
        }
    }
    let mut rings = Vec::new();
    for ((container, stem), mut files) in groups {
        let numbered = files
            .iter()
            .filter(|(_, i)| ring_name(&spans[*i].name).2.is_some())
            .count();
        if files.len() < 2 || numbered == 0 {
            continue;
        }
        // `spans` is in time order: consecutive files of a ring must not overlap.
        let mut by_time: Vec<usize> = files.iter().map(|(_, i)| *i).collect();
        by_time.sort_unstable();
        if by_time
            .windows(2)
            .any(|w| spans[w[1]].first_ts_ns < spans[w[0]].last_ts_ns)
        {
            continue;
        }
        files.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| natural_cmp(&spans[a.1].name, &spans[b.1].name))
        });
        // In number order, time goes back once, from the newest file to the oldest one left:
        // that is where the ring wrapped.
        let descents: Vec<usize> = files
            .windows(2)
            .enumerate()
            .filter(|(_, w)| spans[w[1].1].first_ts_ns < spans[w[0].1].first_ts_ns)
            .map(|(at, _)| at)
            .collect();
        let wrapped = match descents.as_slice() {
            [at] => Some(RingWrap {
                oldest: files[at + 1].1,
                newest: files[*at].1,
            }),
            _ => None,
        };
        let numbers: Vec<u64> = files.iter().map(|(n, _)| *n).collect();
        let (low, high) = (numbers[0], numbers[numbers.len() - 1]);
        let missing = (low..=high)
            .filter(|n| numbers.binary_search(n).is_err())
            .take(50)
            .collect();
        rings.push(Ring {
            name: format!("{container}{stem}"),
            files: files.iter().map(|(_, i)| *i).collect(),
            wrapped,
            missing,
        });
    }
    rings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(index: u16, name: &str, first_s: i64, last_s: i64) -> FileSpan {
        FileSpan {
            file_index: index,
            name: name.into(),
            frames: 10,
            first_ts_ns: first_s * 1_000_000_000,
            last_ts_ns: last_s * 1_000_000_000,
            max_gap_ns: 100_000_000,
        }
    }

    #[test]
    fn a_wrapped_ring_names_its_oldest_and_newest_file() {
        // tcpdump -C 1 -W 3 after writing 4 files: slot 0 holds the 4th.
        let report = CaptureSetReport::from_spans(vec![
            span(0, "d/cap.pcap0", 30, 40),
            span(1, "d/cap.pcap1", 10, 20),
            span(2, "d/cap.pcap2", 20, 30),
        ]);
        assert_eq!(report.rings.len(), 1);
        let ring = &report.rings[0];
        assert_eq!(ring.name, "d/cap.pcap");
        let wrap = ring.wrapped.as_ref().expect("wrapped");
        assert_eq!(report.spans[wrap.oldest].name, "d/cap.pcap1");
        assert_eq!(report.spans[wrap.newest].name, "d/cap.pcap0");
        assert!(ring.missing.is_empty());
        assert_eq!(report.gaps().count(), 0);
    }

    #[test]
    fn an_unwrapped_ring_with_a_hole_reports_the_missing_file_and_the_gap() {
        let report = CaptureSetReport::from_spans(vec![
            span(0, "cap.pcap", 0, 9),
            span(1, "cap.pcap1", 9, 19),
            span(2, "cap.pcap3", 40, 49),
        ]);
        let ring = &report.rings[0];
        assert!(ring.wrapped.is_none());
        assert_eq!(ring.missing, vec![2]);
        let gaps: Vec<_> = report.gaps().collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].gap_ns, 21_000_000_000);
    }

    #[test]
    fn per_core_captures_overlap_and_are_no_ring() {
        let report = CaptureSetReport::from_spans(vec![
            span(0, "a.tgz:core0.pcap", 0, 50),
            span(1, "a.tgz:core1.pcap", 1, 49),
            span(2, "a.tgz:core2.pcap", 2, 51),
        ]);
        assert!(report.rings.is_empty());
        assert_eq!(report.overlaps().count(), 2);
    }
}
