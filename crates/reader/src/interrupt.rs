//! Ending the reading early (Ctrl-C): every input then ends at the next frame, as if it
//! ended there, so that the results so far come out. An input that may block with no data
//! (a pipe that stays open, a terminal) is read on a thread of its own, so that the interrupt
//! ends it even while nothing arrives.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Bytes read from a blocking input at a time.
const PUMP_CHUNK_BYTES: usize = 1 << 16;
/// Chunks read ahead of the parser: memory stays constant however fast the pipe is.
const PUMP_CHUNKS_AHEAD: usize = 4;
/// How often a reader waiting for a blocking input looks for an interrupt.
const INTERRUPT_POLL: Duration = Duration::from_millis(50);

/// Ends every input at its next frame (safe to call from a signal handler's thread).
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Clears an earlier [`interrupt`], so that a reading started afterwards reads to its end
/// (`twsleuth watch --report`: the report of what was watched after Ctrl-C ended watching).
pub fn resume() {
    INTERRUPTED.store(false, Ordering::Relaxed);
}

/// Has [`interrupt`] been called: are the results partial?
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Standard input read on a thread of its own (so that Ctrl-C ends a read that would block), for a caller that wraps
/// it before it becomes a capture (`twsleuth watch --report` keeps a copy of it).
pub fn pumped_stdin() -> Box<dyn Read + Send> {
    Box::new(PumpedReader::new(Box::new(io::stdin())))
}

/// A blocking input read on its own thread; it ends (reads 0 bytes) when the input does or
/// when [`interrupt`] is called.
pub(crate) struct PumpedReader {
    chunks: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl PumpedReader {
    pub(crate) fn new(mut source: Box<dyn Read + Send>) -> PumpedReader {
        let (sender, chunks) = sync_channel(PUMP_CHUNKS_AHEAD);
        // Detached: blocked in `read` it cannot be joined; it ends with the input or the
        // process.
        std::thread::spawn(move || pump(&mut *source, &sender));
        PumpedReader {
            chunks,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

fn pump(source: &mut dyn Read, sender: &SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut chunk = vec![0; PUMP_CHUNK_BYTES];
        let sent = match source.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                sender.send(Ok(chunk))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => sender.send(Err(e)),
        };
        if sent.is_err() {
            return;
        }
    }
}

impl Read for PumpedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            if interrupted() {
                return Ok(0);
            }
            match self.chunks.recv_timeout(INTERRUPT_POLL) {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
