//! What the report crate's tests share.

use twsleuth_decode::{TcpSegment, decode};
use twsleuth_flows::{Findings, TrackerConfig};
use twsleuth_reader::CaptureReader;

/// The findings of a capture under `fixtures/`, tracked with `config`.
pub fn findings_of(relative: &str, config: &TrackerConfig) -> Findings {
    Findings::of_segments(config, &segments_of(relative))
}

/// The TCP segments of a capture under `fixtures/`.
pub fn segments_of(relative: &str) -> Vec<TcpSegment> {
    let path = format!("{}/../../fixtures/{relative}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = CaptureReader::open(&path, 0).unwrap();
    let mut segments = Vec::new();
    while reader.advance() {
        if let Ok(segment) = decode(&reader.current().unwrap()) {
            segments.push(segment);
        }
    }
    segments
}
