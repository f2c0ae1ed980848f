//! Where a capture's bytes come from, so that it can be opened (and opened again): a file,
//! standard input, or a stretch of a tar archive or of the spill that holds the members of a
//! compressed one.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One capture of a run: a file named by the user, one found in a directory, or a member of a
/// tar archive. Cheap to clone: archive bytes are shared.
#[derive(Clone, Debug)]
pub struct CaptureSource {
    name: String,
    origin: Origin,
    /// Found inside a directory or an archive rather than named by the user: if it cannot be
    /// opened it is skipped, not fatal.
    in_set: bool,
}

#[derive(Clone, Debug)]
enum Origin {
    Stdin,
    File(PathBuf),
    /// `len` bytes from `start` of a shared store.
    Stretch {
        store: Arc<Store>,
        start: u64,
        len: u64,
    },
}

/// Bytes that several members are read from at once: a plain tar archive (one descriptor for
/// all its members) or the spill of a compressed one.
#[derive(Debug)]
pub(crate) enum Store {
    /// Read with a seek before each read, under a lock (members of one archive are read in
    /// turn by one thread; the lock only makes the sharing safe).
    File(Mutex<File>),
    Memory(Vec<u8>),
}

impl CaptureSource {
    /// Standard input.
    pub fn stdin() -> CaptureSource {
        CaptureSource {
            name: "-".into(),
            origin: Origin::Stdin,
            in_set: false,
        }
    }

    /// A file named by the user.
    pub fn file(path: &str) -> CaptureSource {
        CaptureSource {
            name: path.to_string(),
            origin: Origin::File(PathBuf::from(path)),
            in_set: false,
        }
    }

    /// A file found in a directory, named `name` in messages and frame references.
    pub(crate) fn dir_entry(name: String, path: PathBuf) -> CaptureSource {
        CaptureSource {
            name,
            origin: Origin::File(path),
            in_set: true,
        }
    }

    /// `len` bytes at `start` of `store`.
    pub(crate) fn stretch(name: String, store: Arc<Store>, start: u64, len: u64) -> CaptureSource {
        CaptureSource {
            name,
            origin: Origin::Stretch { store, start, len },
            in_set: true,
        }
    }

    /// The capture's name: the path as given, `dir/file` for a directory entry,
    /// `archive.tgz:member` for a tar member, `-` for standard input.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Found in a directory or an archive rather than named by the user.
    pub fn in_set(&self) -> bool {
        self.in_set
    }

    /// Whether it can be opened a second time (standard input and pipes cannot).
    pub fn can_reopen(&self) -> bool {
        match &self.origin {
            Origin::Stdin => false,
            Origin::File(path) => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
            Origin::Stretch { .. } => true,
        }
    }

    /// The path to open when this is a file, else `None` (a member is opened by
    /// [`CaptureSource::open_stretch`]).
    pub(crate) fn path(&self) -> Option<&str> {
        match &self.origin {
            Origin::Stdin => Some("-"),
            Origin::File(path) => path.to_str(),
            Origin::Stretch { .. } => None,
        }
    }

    /// The reader of an archive member and its size.
    pub(crate) fn open_stretch(&self) -> Option<(Box<dyn Read + Send>, u64)> {
        match &self.origin {
            Origin::Stretch { store, start, len } => Some((
                Box::new(StretchReader {
                    store: Arc::clone(store),
                    at: *start,
                    end: start + len,
                }),
                *len,
            )),
            _ => None,
        }
    }
}

/// Reads a stretch of a [`Store`].
pub(crate) struct StretchReader {
    store: Arc<Store>,
    at: u64,
    end: u64,
}

impl StretchReader {
    pub(crate) fn new(store: Arc<Store>, start: u64, len: u64) -> StretchReader {
        StretchReader {
            store,
            at: start,
            end: start + len,
        }
    }
}

impl Read for StretchReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = match &*self.store {
            Store::Memory(bytes) => {
                let from = usize::try_from(self.at).unwrap_or(usize::MAX);
                let src = bytes.get(from..from.saturating_add(want)).unwrap_or(&[]);
                buf[..src.len()].copy_from_slice(src);
                src.len()
            }
            Store::File(file) => {
                let mut file = file
                    .lock()
                    .map_err(|_| io::Error::other("a reader of this archive panicked"))?;
                file.seek(SeekFrom::Start(self.at))?;
                file.read(&mut buf[..want])?
            }
        };
        self.at += n as u64;
        Ok(n)
    }
}
