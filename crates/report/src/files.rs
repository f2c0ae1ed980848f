//! Writing output files so that an interrupted run never leaves a half-written file that
//! looks complete: each file is written under a temporary name beside it, then renamed over
//! the final name (rename is atomic within a directory on POSIX). No fsync: this guards
//! against an interrupted run (Ctrl-C, a full disk, a crash of twsleuth), not against a power
//! cut, and syncing hundreds of MB of exports would dominate the run time.
//!
//! A report directory also lists what twsleuth wrote into it ([`MANIFEST`]): a later run
//! replaces exactly those files and refuses to write among files it did not write
//! ([`check_output_dir`]), unless forced.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The file in a report directory that lists, one relative path a line, the files twsleuth
/// wrote there.
pub const MANIFEST: &str = ".twsleuth-report";

/// The write buffer of an output file: the exports' CSV runs to hundreds of megabytes, and
/// std's 8 KiB made a `write` call for each 8 KiB of it.
const WRITE_BUFFER_BYTES: usize = 256 << 10;

/// A file being written under a temporary name; [`Pending::commit`] gives it its name, and
/// dropping it uncommitted removes what was written.
pub struct Pending {
    temporary: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Pending {
    /// Creates the temporary file for `path`, and a buffered writer into it. Flush the writer
    /// (or let its owner flush it) before [`Pending::commit`].
    pub fn create(path: &Path) -> io::Result<(Pending, BufWriter<File>)> {
        let file_name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        })?;
        let temporary = path.with_file_name(format!(
            ".{}.twsleuth-{}.tmp",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::create(&temporary)?;
        Ok((
            Pending {
                temporary,
                path: path.to_path_buf(),
                committed: false,
            },
            BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
        ))
    }

    /// Renames the temporary file to its final name.
    pub fn commit(mut self) -> io::Result<()> {
        std::fs::rename(&self.temporary, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Writes `path` atomically with what `fill` writes.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let (pending, mut writer) = Pending::create(path)?;
    fill(&mut writer)?;
    writer.flush()?;
    drop(writer);
    pending.commit()
}

/// Why a directory cannot take a report.
#[derive(Debug)]
pub enum OutputDirError {
    /// The path exists and is not a directory.
    NotADirectory(PathBuf),
    /// The directory holds files twsleuth did not write (the first few, relative).
    Foreign {
        /// The directory.
        dir: PathBuf,
        /// Some of the files.
        files: Vec<PathBuf>,
        /// How many there are.
        count: usize,
    },
    /// The directory cannot be read.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for OutputDirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputDirError::NotADirectory(path) => {
                write!(f, "{} exists and is not a directory", path.display())
            }
            OutputDirError::Foreign { dir, files, count } => {
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                write!(
                    f,
                    "{} holds {count} file(s) twsleuth did not write ({}{}): choose an empty or new directory, or pass --force to write the report among them (they are left as they are)",
                    dir.display(),
                    names.join(", "),
                    if *count > files.len() { ", …" } else { "" }
                )
            }
            OutputDirError::Io(path, error) => write!(f, "cannot read {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for OutputDirError {}

/// Files of a directory that twsleuth wrote: those its manifest lists.
fn manifest_of(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(dir.join(MANIFEST))
        .map(|text| {
            text.lines()
                .filter(|line| !line.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Every file under `dir`, relative to it, in name order.
fn files_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&relative))?
            .collect::<io::Result<Vec<_>>>()?
            .into_iter()
            .map(|entry| entry.file_name())
            .collect();
        entries.sort();
        for name in entries {
            let path = relative.join(name);
            if dir.join(&path).is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Whether `dir` may take a report: it does not exist, or holds only what twsleuth wrote
/// there (its manifest, the files it lists, and temporary files of an interrupted run); with
/// `force`, any directory. Checked before the analysis, so that a long run does not end in a
/// refusal.
pub fn check_output_dir(dir: &Path, force: bool) -> Result<(), OutputDirError> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(OutputDirError::NotADirectory(dir.to_path_buf()));
    }
    if force {
        return Ok(());
    }
    let ours = manifest_of(dir);
    let foreign: Vec<PathBuf> = files_under(dir)
        .map_err(|e| OutputDirError::Io(dir.to_path_buf(), e))?
        .into_iter()
        .filter(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let temporary =
                name.starts_with('.') && name.ends_with(".tmp") && name.contains(".twsleuth-");
            path != Path::new(MANIFEST) && !temporary && !ours.contains(path)
        })
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(OutputDirError::Foreign {
        dir: dir.to_path_buf(),
        count: foreign.len(),
        files: foreign.into_iter().take(5).collect(),
    })
}

/// Records that `written` (paths under `dir`) are twsleuth's, and removes the files an earlier
/// run wrote there that this one did not (a chart of a source this capture does not have).
pub fn replace_earlier_outputs(dir: &Path, written: &[PathBuf]) -> io::Result<()> {
    let relative: Vec<PathBuf> = written
        .iter()
        .filter_map(|path| path.strip_prefix(dir).ok().map(Path::to_path_buf))
        .collect();
    for stale in manifest_of(dir) {
        // Only plain relative paths: a manifest edited to name `../x` removes nothing.
        let plain = stale
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if plain && !relative.contains(&stale) {
            match std::fs::remove_file(dir.join(&stale)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    let mut manifest = String::new();
    for path in &relative {
        manifest.push_str(&path.to_string_lossy());
        manifest.push('\n');
    }
    write_atomically(&dir.join(MANIFEST), |w| w.write_all(manifest.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_neither_file_nor_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let result = write_atomically(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("interrupted"))
        });
        assert!(result.is_err());
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomically(&path, |w| w.write_all(b"whole")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    }

    #[test]
    fn a_directory_with_files_twsleuth_did_not_write_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report");
        assert!(check_output_dir(&out, false).is_ok(), "a new directory");
        std::fs::create_dir_all(out.join("charts")).unwrap();
        assert!(check_output_dir(&out, false).is_ok(), "an empty directory");
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        std::fs::write(out.join("charts/a.svg"), "<svg/>").unwrap();
        let error = check_output_dir(&out, false).unwrap_err().to_string();
        assert!(
            error.contains("2 file(s) twsleuth did not write"),
            "{error}"
        );
        assert!(
            error.contains("notes.txt") && error.contains("--force"),
            "{error}"
        );
        assert!(check_output_dir(&out, true).is_ok());
        std::fs::write(out.join("x"), "").unwrap();
        assert!(matches!(
            check_output_dir(&out.join("x"), false),
            Err(OutputDirError::NotADirectory(_))
        ));
    }

    #[test]
    fn a_rerun_replaces_its_own_files_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::create_dir_all(out.join("charts")).unwrap();
        let first = [
            out.join("report.md"),
            out.join("charts/port-reuse-10.0.0.1.svg"),
        ];
        for path in &first {
            std::fs::write(path, "first").unwrap();
        }
        replace_earlier_outputs(out, &first).unwrap();
        assert!(check_output_dir(out, false).is_ok(), "its own files");
        // The second capture has another source: the first one's chart must go.
        let second = [
            out.join("report.md"),
            out.join("charts/port-reuse-10.0.0.2.svg"),
        ];
        for path in &second {
            std::fs::write(path, "second").unwrap();
        }
        replace_earlier_outputs(out, &second).unwrap();
        assert!(!first[1].exists());
        assert!(second.iter().all(|p| p.exists()));
        assert_eq!(
            std::fs::read_to_string(out.join(MANIFEST)).unwrap(),
            "report.md\ncharts/port-reuse-10.0.0.2.svg\n"
        );
        // A file of the user's beside a report written with --force stays.
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        replace_earlier_outputs(out, &second).unwrap();
        assert!(out.join("notes.txt").exists());
    }
}
