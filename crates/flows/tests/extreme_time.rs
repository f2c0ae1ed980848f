//! Regression (fuzzing, end_to_end target): a pcapng timestamp too large for i64 reaches the
//! tracker saturated to `i64::MAX`; time arithmetic must not overflow.

use twsleuth_decode::decode;
use twsleuth_flows::{Findings, TrackerConfig};
use twsleuth_reader::CaptureReader;

#[test]
fn saturated_timestamps_do_not_overflow_the_tracker() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/fuzz/end_to_end-tracker-sweep-add-overflow-plain.bin"
    );
    let mut reader = CaptureReader::open(path, 0).unwrap();
    let mut segments = Vec::new();
    while reader.advance() {
        if let Ok(seg) = decode(&reader.current().unwrap()) {
            segments.push(seg);
        }
    }
    assert!(!segments.is_empty(), "the input reaches the tracker");
    let findings = Findings::of_segments(&TrackerConfig::default(), &segments);
    assert_eq!(findings.counters.segments, segments.len() as u64);
}
