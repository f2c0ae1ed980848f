//! Capture reader on arbitrary bytes (pcap, pcapng, gzip or zstd: the reader detects them by
//! magic): it must never panic, and the frames it delivers must be numbered in order and
//! counted.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use twsleuth_reader::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::from_reader("fuzz", Box::new(Cursor::new(data.to_vec())), 0)
    else {
        return;
    };
    let mut frames = 0u64;
    let mut last_number = 0u64;
    while reader.advance() {
        let frame = reader
            .current()
            .expect("advance() returned true but current() has no frame");
        frames += 1;
        assert!(
            frame.number > last_number,
            "frame numbers must increase: {} after {}",
            frame.number,
            last_number
        );
        last_number = frame.number;
        assert_eq!(frame.file_index, 0);
        // Frame numbers count frames plus the numbered non-packet blocks (custom, journal).
        let counters = reader.counters();
        assert_eq!(counters.frames, frames);
        assert_eq!(
            frame.number,
            counters.frames + counters.numbered_blocks,
            "frame number is not frames + numbered blocks"
        );
        // Touch every byte: the span must lie inside the buffer.
        std::hint::black_box(frame.data.iter().fold(0u8, |a, b| a ^ b));
        std::hint::black_box(frame.comment.map(str::len));
        std::hint::black_box(frame.section_comment.map(str::len));
    }
    assert!(reader.current().is_none(), "current() after the end");
    assert!(!reader.advance(), "advance() after the end");
    assert_eq!(reader.counters().frames, frames, "counters().frames != frames seen");
    if let Some(damage) = reader.damage() {
        assert_eq!(damage.frames_before, frames, "damage.frames_before != frames seen");
        let _ = damage.to_string();
    }
});
