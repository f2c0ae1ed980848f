//! Several inputs read as one stream, merged by timestamp like `mergecap`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::capture::{CaptureReader, Frame};

/// Frames of several inputs in timestamp order.
///
/// Each input is assumed to be in time order, as captures are; frames with equal timestamps
/// come in input order, and an input whose clock steps back is still read in its own order.
/// Every frame keeps its input index and its frame number within that input.
pub struct MergedCaptures {
    readers: Vec<CaptureReader>,
    /// The next frame of each input that has one: (timestamp, input index).
    heads: BinaryHeap<Reverse<(i64, usize)>>,
    /// The input whose frame was delivered last; it advances on the next call.
    delivered: Option<usize>,
}

impl MergedCaptures {
    /// Merges the given inputs.
    pub fn new(mut readers: Vec<CaptureReader>) -> MergedCaptures {
        let mut heads = BinaryHeap::with_capacity(readers.len());
        for (index, reader) in readers.iter_mut().enumerate() {
            if reader.advance() {
                if let Some(frame) = reader.current() {
                    heads.push(Reverse((frame.ts_ns, index)));
                }
            }
        }
        MergedCaptures {
            readers,
            heads,
            delivered: None,
        }
    }

    /// The next frame in timestamp order, or `None` when every input is done or reading was
    /// [interrupted](crate::interrupt).
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        if crate::interrupted() {
            return None;
        }
        if let Some(index) = self.delivered.take() {
            let reader = &mut self.readers[index];
            if reader.advance() {
                if let Some(frame) = reader.current() {
                    let head = (frame.ts_ns, index);
                    // Still ahead of every other input (always, with one input): delivered
                    // without going through the heap.
                    if self.heads.peek().is_none_or(|Reverse(next)| head < *next) {
                        self.delivered = Some(index);
                        return self.readers[index].current();
                    }
                    self.heads.push(Reverse(head));
                }
            }
        }
        let Reverse((_, index)) = self.heads.pop()?;
        self.delivered = Some(index);
        self.readers[index].current()
    }

    /// The inputs, for their counters and damage.
    pub fn readers(&self) -> &[CaptureReader] {
        &self.readers
    }

    /// Bytes read from all inputs so far (compressed bytes for compressed input).
    pub fn raw_bytes_read(&self) -> u64 {
        self.readers.iter().map(CaptureReader::raw_bytes_read).sum()
    }
}
