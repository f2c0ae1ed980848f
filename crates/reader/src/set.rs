//! Capture sets: the inputs of a run as the user named them (files, directories, tar
//! archives), expanded into one list of captures, each its own input with its own name and
//! frame numbers; and what the set's time ranges show (gaps, overlaps, a ring that wrapped).
//!
//! Members of a directory or an archive are recognised by their first bytes, never by their
//! names; the rest are listed as skipped, with the reason. They are numbered in name order,
//! digits compared as numbers, so that tcpdump's ring files (`cap.pcap`, `cap.pcap1`, …,
//! `cap.pcap10`) and time-stamped `-G` names (`cap-20250101-120000.pcap`) come in the order they
//! were written; frames are merged by timestamp whatever the order.
//!
//! A plain tar archive is read in place: each member is a stretch of the archive file, all of
//! them through one file descriptor. A gzip- or zstd-compressed archive can only be read from
//! its start, yet its members (one capture per CPU core, say) overlap in time and must be read
//! side by side: its capture members are decompressed once, into memory up to
//! [`SPILL_MEMORY_BYTES`] in all and beyond that into one temporary file (unlinked at once, so
//! nothing is left behind, even after a crash). That takes temporary disk space equal to the
//! decompressed size of the members; memory stays bounded.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{ReadError, ReadErrorKind};
use crate::sniff::{SNIFF_BYTES, Sniffed, sniff};
use crate::source::{CaptureSource, Store, StretchReader};

/// Members of compressed archives are held in memory up to this many bytes in all, then in a
/// temporary file.
pub const SPILL_MEMORY_BYTES: usize = 64 << 20;
/// The most captures one run reads: a frame reference names its file with 16 bits.
pub const MAX_MEMBERS: usize = u16::MAX as usize;
/// How much of a compressed file is read to see what it holds.
const COMPRESSED_HEAD_BYTES: usize = 256 << 10;

/// A file of a directory or archive that is not read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its name (`dir/notes.txt`, `a10.tgz:README`).
    pub name: String,
    /// Why, in words ("not a capture: it is text, starting with \"Hello\"").
    pub reason: String,
}

/// The captures of a run, in the order they are numbered, and the files passed over.
#[derive(Clone, Debug, Default)]
pub struct CaptureSet {
    members: Vec<CaptureSource>,
    skipped: Vec<Skipped>,
}

impl CaptureSet {
    /// Expands the inputs as named by the user: `-` (standard input), capture files,
    /// directories and tar archives (plain, gzip or zstd). A directory or archive without any
    /// capture is an error; so are more than [`MAX_MEMBERS`] captures in all.
    ///
    /// ```
    /// use twsleuth_reader::{CaptureSet, MergedCaptures};
    /// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/lab/haproxy");
    /// let set = CaptureSet::expand(&[dir.to_string()]).unwrap();
    /// // Five captures, in name order; the kernel's record beside them is not one.
    /// let names: Vec<&str> = set.members().iter().map(|m| m.name()).collect();
    /// let files = ["lb-backend", "lb-frontend", "one-sided-client", "one-sided-server", "server"];
    /// assert_eq!(names, files.map(|f| format!("{dir}/{f}.pcap")));
    /// assert!(set.skipped()[0].name.ends_with("/truth.json"));
    /// assert!(set.skipped()[0].reason.starts_with("not a capture: it is text"));
    /// let mut merged = MergedCaptures::from_set(&set, false).unwrap();
    /// let mut frames = 0;
    /// while merged.next_frame().is_some() {
    ///     frames += 1;
    /// }
    /// assert_eq!(frames, 8012 + 7214 + 8011 + 2 * 4000);
    /// ```
    pub fn expand(inputs: &[String]) -> Result<CaptureSet, ReadError> {
        let mut set = CaptureSet::default();
        for input in inputs {
            set.add_input(input)?;
        }
        if set.members.len() > MAX_MEMBERS {
            return Err(ReadError {
                input: inputs.join(" "),
                offset: None,
                frames_before: 0,
                kind: ReadErrorKind::TooManyMembers {
                    members: set.members.len(),
                    limit: MAX_MEMBERS,
                },
            });
        }
        Ok(set)
    }

    /// A set of the given captures, as they are.
    pub fn from_sources(members: Vec<CaptureSource>) -> CaptureSet {
        CaptureSet {
            members,
            skipped: Vec::new(),
        }
    }

    /// The captures, in input order (their `file_index`).
    pub fn members(&self) -> &[CaptureSource] {
        &self.members
    }

    /// Files of directories and archives that are not read, with the reason.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    pub(crate) fn skip(&mut self, name: String, reason: String) {
        self.skipped.push(Skipped { name, reason });
    }

    fn add_input(&mut self, input: &str) -> Result<(), ReadError> {
        let error = |kind| ReadError {
            input: input.to_string(),
            offset: None,
            frames_before: 0,
            kind,
        };
        if input == "-" {
            self.members.push(CaptureSource::stdin());
            return Ok(());
        }
        let meta = std::fs::metadata(input).map_err(|e| error(ReadErrorKind::Io(e)))?;
        if meta.is_dir() {
            let before = (self.members.len(), self.skipped.len());
            self.add_dir(input)
                .map_err(|e| error(ReadErrorKind::Io(e)))?;
            if self.members.len() == before.0 {
                return Err(error(ReadErrorKind::NoCapture(skipped_summary(
                    &self.skipped[before.1..],
                ))));
            }
            return Ok(());
        }
        if meta.is_file() {
            let head = read_head(Path::new(input)).map_err(|e| error(ReadErrorKind::Io(e)))?;
            if let Sniffed::Tar { compressed } = sniff(&head, input) {
                let before = (self.members.len(), self.skipped.len());
                self.add_tar(input, Path::new(input), compressed)
                    .map_err(error)?;
                if self.members.len() == before.0 {
                    return Err(error(ReadErrorKind::NoCapture(skipped_summary(
                        &self.skipped[before.1..],
                    ))));
                }
                return Ok(());
            }
        }
        // A capture, or not: opening it says which, and what is wrong (fatal for a file the
        // user named).
        self.members.push(CaptureSource::file(input));
        Ok(())
    }

    /// Adds the captures of a directory (not its subdirectories), in name order.
    fn add_dir(&mut self, dir: &str) -> io::Result<()> {
        let mut entries: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|entry| {
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.path(),
                )
            })
            .collect();
        entries.sort_by(|a, b| natural_cmp(&a.0, &b.0));
        let prefix = dir.trim_end_matches('/');
        for (file_name, path) in entries {
            let name = format!("{prefix}/{file_name}");
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    self.skip(name, format!("cannot read: {e}"));
                    continue;
                }
            };
            if meta.is_dir() {
                self.skip(
                    name,
                    "a directory: subdirectories are not read (name it to read it)".into(),
                );
                continue;
            }
            if !meta.is_file() {
                self.skip(name, "not a regular file (a pipe, socket or device)".into());
                continue;
            }
            let head = match read_head(&path) {
                Ok(head) => head,
                Err(e) => {
                    self.skip(name, format!("cannot read: {e}"));
                    continue;
                }
            };
            match sniff(&head, &name) {
                Sniffed::Capture => self.members.push(CaptureSource::dir_entry(name, path)),
                Sniffed::Tar { compressed } => {
                    if let Err(kind) = self.add_tar(&name, &path, compressed) {
                        self.skip(name, kind.to_string());
                    }
                }
                Sniffed::Empty => self.skip(name, "empty (0 bytes)".into()),
                Sniffed::Other(kind) => self.skip(name, kind.to_string()),
            }
        }
        Ok(())
    }

    /// Adds the capture members of a tar archive, in name order.
    fn add_tar(&mut self, name: &str, path: &Path, compressed: bool) -> Result<(), ReadErrorKind> {
        let file = File::open(path).map_err(ReadErrorKind::Io)?;
        let mut members = if compressed {
            self.spill_tar(name, file)?
        } else {
            // Opened twice: a cloned descriptor would share the read position with the
            // archive's own reading.
            let store_file = File::open(path).map_err(ReadErrorKind::Io)?;
            self.index_tar(name, file, store_file)?
        };
        members.sort_by(|a, b| natural_cmp(a.name(), b.name()));
        self.members.extend(members);
        Ok(())
    }

    /// A plain tar: each member is read where it lies in the archive.
    fn index_tar(
        &mut self,
        name: &str,
        file: File,
        store_file: File,
    ) -> Result<Vec<CaptureSource>, ReadErrorKind> {
        let store = Arc::new(Store::File(Mutex::new(store_file)));
        let mut archive = tar::Archive::new(file);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| ReadErrorKind::Archive(e.to_string()))?;
        let mut members = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.archive_damage(name, members.last().map(CaptureSource::name), e);
                    break;
                }
            };
            let Some(member_name) = self.regular_member(name, &entry) else {
                continue;
            };
            let (start, len) = (entry.raw_file_position(), entry.size());
            let head = match sniff_head(&mut StretchReader::new(Arc::clone(&store), start, len)) {
                Ok(head) => head,
                Err(e) => {
                    self.skip(member_name, format!("cannot read: {e}"));
                    continue;
                }
            };
            match self.classify_member(member_name, &head) {
                Some(member_name) => members.push(CaptureSource::stretch(
                    member_name,
                    Arc::clone(&store),
                    start,
                    len,
                )),
                None => continue,
            }
        }
        Ok(members)
    }

    /// A compressed tar: read once from its start, its capture members copied to the spill.
    fn spill_tar(&mut self, name: &str, file: File) -> Result<Vec<CaptureSource>, ReadErrorKind> {
        let mut head = [0u8; 4];
        let mut file = file;
        let n = file.read(&mut head).map_err(ReadErrorKind::Io)?;
        file.seek(SeekFrom::Start(0)).map_err(ReadErrorKind::Io)?;
        let decompressed: Box<dyn Read> = if head[..n].starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(file)))
        } else {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(ReadErrorKind::Io)?)
        };
        let mut archive = tar::Archive::new(decompressed);
        let entries = archive
            .entries()
            .map_err(|e| ReadErrorKind::Archive(e.to_string()))?;
        let mut spill = Spill::default();
        // (name, start, len) in the spill.
        let mut stretches: Vec<(String, u64, u64)> = Vec::new();
        for entry in entries {
            // Ctrl-C: the run ends at its first frame anyway; no point unpacking the rest.
            if crate::interrupted() {
                break;
            }
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let last = stretches.last().map(|s| s.0.as_str());
                    self.archive_damage(name, last, e);
                    break;
                }
            };
            let Some(member_name) = self.regular_member(name, &entry) else {
                continue;
            };
            let head = match sniff_head(&mut entry) {
                Ok(head) => head,
                Err(e) => {
                    let last = stretches.last().map(|s| s.0.as_str());
                    self.archive_damage(name, last, e);
                    break;
                }
            };
            let Some(member_name) = self.classify_member(member_name, &head) else {
                continue;
            };
            let start = spill.len();
            let copied = spill
                .write_all(&head)
                .and_then(|()| io::copy(&mut entry, &mut spill));
            if let Err(e) = copied {
                // The decompression failed inside this member: what came before stays.
                let len = spill.len() - start;
                stretches.push((member_name.clone(), start, len));
                self.skip(
                    name.to_string(),
                    format!(
                        "the rest of the archive cannot be read, from inside {member_name} on \
                         (read up to there): {e}"
                    ),
                );
                break;
            }
            stretches.push((member_name, start, spill.len() - start));
        }
        let store = Arc::new(spill.freeze().map_err(ReadErrorKind::Io)?);
        Ok(stretches
            .into_iter()
            .map(|(member_name, start, len)| {
                CaptureSource::stretch(member_name, Arc::clone(&store), start, len)
            })
            .collect())
    }

    /// The name of a regular-file member (`archive:path`); other entries (directories, links,
    /// sparse files) are skipped, files with a reason.
    fn regular_member<R: Read>(
        &mut self,
        archive: &str,
        entry: &tar::Entry<'_, R>,
    ) -> Option<String> {
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let member_name = format!("{archive}:{path}");
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Some(member_name),
            tar::EntryType::Directory
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => None,
            tar::EntryType::GNUSparse => {
                self.skip(
                    member_name,
                    "a sparse file in the archive: extract it and name it to read it".into(),
                );
                None
            }
            other => {
                self.skip(
                    member_name,
                    format!("not a regular file in the archive ({other:?})"),
                );
                None
            }
        }
    }

    /// Whether a member is a capture, by its first bytes; others are listed as skipped.
    fn classify_member(&mut self, member_name: String, head: &[u8]) -> Option<String> {
        match sniff(head, &member_name) {
            Sniffed::Capture => Some(member_name),
            Sniffed::Tar { .. } => {
                self.skip(
                    member_name,
                    "a tar archive inside the archive: extract it and name it to read it".into(),
                );
                None
            }
            Sniffed::Empty => {
                self.skip(member_name, "empty (0 bytes)".into());
                None
            }
            Sniffed::Other(kind) => {
                self.skip(member_name, kind.to_string());
                None
            }
        }
    }

    fn archive_damage(&mut self, name: &str, last: Option<&str>, error: io::Error) {
        let after = last.map_or_else(|| "from its start".to_string(), |m| format!("after {m}"));
        self.skip(
            name.to_string(),
            format!("the rest of the archive ({after}) cannot be read: {error}"),
        );
    }
}

/// " (3 file(s): a.txt: not a capture; …)" for the error of a
/// directory or archive without captures: each file's reason cut to what it is (naming one
/// file alone gives the whole reason, with the command that converts it).
fn skipped_summary(skipped: &[Skipped]) -> String {
    if skipped.is_empty() {
        return " (it is empty)".to_string();
    }
    const LISTED: usize = 8;
    let listed: Vec<String> = skipped
        .iter()
        .take(LISTED)
        .map(|s| {
            let leaf = s.name.rsplit(['/', ':']).next().unwrap_or(&s.name);
            let what = s
                .reason
                .split(", a format twsleuth does not read")
                .next()
                .and_then(|r| r.split(": ").next())
                .unwrap_or(&s.reason);
            format!("{leaf}: {what}")
        })
        .collect();
    let more = if skipped.len() > LISTED {
        format!("; and {} more", skipped.len() - LISTED)
    } else {
        String::new()
    };
    format!(
        " ({} file(s): {}{more}; name one of them alone to see what to do with it)",
        skipped.len(),
        listed.join("; ")
    )
}

/// The first bytes of a file, enough to tell what it is.
fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    sniff_head(&mut File::open(path)?)
}

/// The first bytes of a stream, enough to tell what it is: [`SNIFF_BYTES`], or up to
/// [`COMPRESSED_HEAD_BYTES`] of a compressed stream, whose first block must be whole to
/// decompress (a zstd block holds up to 128 KiB).
fn sniff_head(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    reader.take(SNIFF_BYTES as u64).read_to_end(&mut head)?;
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        reader
            .take((COMPRESSED_HEAD_BYTES - SNIFF_BYTES) as u64)
            .read_to_end(&mut head)?;
    }
    Ok(head)
}

/// Where the members of a compressed archive go: memory up to [`SPILL_MEMORY_BYTES`], then an
/// unlinked temporary file.
#[derive(Default)]
struct Spill {
    memory: Vec<u8>,
    file: Option<File>,
    file_len: u64,
}

impl Spill {
    fn len(&self) -> u64 {
        match self.file {
            Some(_) => self.file_len,
            None => self.memory.len() as u64,
        }
    }

    fn freeze(self) -> io::Result<Store> {
        Ok(match self.file {
            Some(file) => Store::File(Mutex::new(file)),
            None => Store::Memory(self.memory),
        })
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > SPILL_MEMORY_BYTES {
            let mut file = tempfile::tempfile()?;
            file.write_all(&self.memory)?;
            self.file_len = self.memory.len() as u64;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => {
                let n = file.write(buf)?;
                self.file_len += n as u64;
                Ok(n)
            }
            None => {
                self.memory.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Compares names with their digit runs as numbers: `cap.pcap2` < `cap.pcap10`, `cap.pcap` <
/// `cap.pcap1`; equal numbers with more leading zeros first, then byte order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (n, m) = (run(x), run(y));
                let (p, q) = (&x[..n], &y[..m]);
                let strip = |s: &'_ [u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
                let (p0, q0) = (&p[strip(p)..], &q[strip(q)..]);
                let by_value = p0.len().cmp(&q0.len()).then_with(|| p0.cmp(q0));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_names_sort_by_number() {
        let mut names = vec![
            "cap.pcap10",
            "cap.pcap2",
            "cap.pcap",
            "cap.pcap1",
            "cap.pcap11",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "cap.pcap",
                "cap.pcap1",
                "cap.pcap2",
                "cap.pcap10",
                "cap.pcap11"
            ]
        );
    }

    #[test]
    fn rotated_names_sort_by_time() {
        let mut names = vec![
            "trace-20250101-235959.pcap",
            "trace-20250102-000000.pcap",
            "trace-20241231-120000.pcap",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "trace-20241231-120000.pcap",
                "trace-20250101-235959.pcap",
                "trace-20250102-000000.pcap"
            ]
        );
        assert_eq!(natural_cmp("a01", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("a1", "a1"), Ordering::Equal);
    }
}
