//! SHA-256 of an input's bytes, hashed on a thread of its own while the reading goes on. The
//! reading thread is the analysis's serial stage, and hashing there took 5% of `report`'s CPU
//! on the bench capture (perf); off it, `report` ran 2% faster (paired runs). One thread
//! hashes for every input, in the order their bytes were read; an input shorter than a chunk
//! is hashed where it is read.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use sha2::{Digest, Sha256};

/// Bytes handed to the hashing thread at a time: what an input holds at most beside its read
/// buffer, which is never smaller ([`crate::MIN_BUFFER_BYTES`]), so that hashing at most
/// doubles what a set of captures read side by side (one per CPU core of a balancer,
/// hundreds of them) holds in buffers.
const CHUNK_BYTES: usize = crate::MIN_BUFFER_BYTES;
/// Chunks waiting for the hashing thread, at most: past them the reading waits (2 MiB).
const QUEUED_CHUNKS: usize = 32;

/// What the hashing thread is asked to do.
enum Job {
    /// Hash a chunk into an input's state.
    Update(Arc<Mutex<Sha256>>, Vec<u8>),
    /// Say when every job sent before this one is done.
    Barrier(SyncSender<()>),
}

/// The hashing thread's queue; `None` when the thread could not be started (inputs are then
/// hashed where they are read).
fn hashing_thread() -> Option<&'static SyncSender<Job>> {
    static QUEUE: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (queue, jobs) = mpsc::sync_channel(QUEUED_CHUNKS);
            std::thread::Builder::new()
                .name("twsleuth-sha256".into())
                .spawn(move || hash_jobs(&jobs))
                .ok()
                .map(|_| queue)
        })
        .as_ref()
}

/// Sends `job` to the hashing thread; gives it back when no thread takes it (none could be
/// started, or it is gone, which it never is short of a panic).
fn send(job: Job) -> Result<(), Job> {
    match hashing_thread() {
        Some(queue) => queue.send(job).map_err(|mpsc::SendError(job)| job),
        None => Err(job),
    }
}

fn hash_jobs(jobs: &Receiver<Job>) {
    for job in jobs {
        match job {
            Job::Update(state, chunk) => lock(&state).update(&chunk),
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// An input's hash state, poisoned or not: it is only ever held to update or finish it.
fn lock(state: &Mutex<Sha256>) -> MutexGuard<'_, Sha256> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The SHA-256 of one input, fed its bytes in order.
pub(crate) struct InputHasher {
    /// Bytes not handed over yet.
    pending: Vec<u8>,
    /// The hash of the bytes handed over, once there are some.
    handed_over: Option<Arc<Mutex<Sha256>>>,
}

impl InputHasher {
    pub(crate) fn new() -> InputHasher {
        InputHasher {
            pending: Vec::new(),
            handed_over: None,
        }
    }

    /// Hashes the input's next bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= CHUNK_BYTES {
            let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_BYTES));
            let state = self
                .handed_over
                .get_or_insert_with(|| Arc::new(Mutex::new(Sha256::new())));
            if let Err(Job::Update(state, chunk)) = send(Job::Update(Arc::clone(state), chunk)) {
                lock(&state).update(&chunk);
            }
        }
    }

    /// The hash of every byte given, once the hashing thread has taken in those handed over.
    pub(crate) fn finish(self) -> [u8; 32] {
        let Some(state) = self.handed_over else {
            return Sha256::digest(&self.pending).into();
        };
        let (done, wait) = mpsc::sync_channel(1);
        if send(Job::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
        let mut hasher = lock(&state);
        hasher.update(&self.pending);
        std::mem::take(&mut *hasher).finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_sha256_of_the_bytes_whatever_their_pieces() {
        let bytes: Vec<u8> = (0..3 * CHUNK_BYTES + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let pieces = [1000, 70_000, CHUNK_BYTES + 1, 9];
        // Three inputs at once, each fed every piece: their chunks interleave on the thread.
        let mut together: Vec<InputHasher> = (0..3).map(|_| InputHasher::new()).collect();
        for piece in pieces {
            let mut alone = InputHasher::new();
            for part in bytes.chunks(piece) {
                alone.update(part);
                together.iter_mut().for_each(|h| h.update(part));
            }
            assert_eq!(
                alone.finish(),
                <[u8; 32]>::from(Sha256::digest(&bytes)),
                "pieces of {piece} bytes"
            );
        }
        let four_times = bytes.repeat(pieces.len());
        for hasher in together {
            assert_eq!(
                hasher.finish(),
                <[u8; 32]>::from(Sha256::digest(&four_times))
            );
        }
        // Shorter than a chunk: hashed where it is read.
        let mut short = InputHasher::new();
        short.update(&bytes[..100]);
        assert!(short.handed_over.is_none());
        assert_eq!(
            short.finish(),
            <[u8; 32]>::from(Sha256::digest(&bytes[..100]))
        );
    }
}
