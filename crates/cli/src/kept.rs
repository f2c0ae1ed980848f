//! Standard input kept as a file in the report's directory: the report's frame numbers and
//! Wireshark filters name frames of it, and its manifest lists it (`watch --report`, and
//! `report` of standard input). The report itself is made in the one pass that keeps it.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use twsleuth_reader::{CaptureFormat, CaptureReader, Compression};

/// Standard input kept as it arrives, in the report's directory.
pub struct KeptInput {
    /// Where the bytes go while they arrive; renamed by their format at the end.
    receiving: PathBuf,
}

impl KeptInput {
    /// Starts keeping into `dir/capture.receiving`; returns where to write the bytes.
    pub fn create(dir: &Path) -> anyhow::Result<(KeptInput, BufWriter<File>)> {
        let receiving = dir.join("capture.receiving");
        let file = File::create(&receiving)
            .with_context(|| format!("cannot create {}", receiving.display()))?;
        Ok((KeptInput { receiving }, BufWriter::new(file)))
    }

    /// Names the kept bytes by the format and compression the reader found in them (the
    /// bytes as received: a compressed input stays compressed) and returns the path.
    pub fn finish(self, opened: Option<(CaptureFormat, Compression)>) -> anyhow::Result<PathBuf> {
        let extension = match opened {
            Some((_, Compression::Gzip)) => "gz",
            Some((_, Compression::Zstd)) => "zst",
            Some((CaptureFormat::PcapNg, Compression::None)) => "pcapng",
            Some((CaptureFormat::Pcap { .. }, Compression::None)) | None => "pcap",
        };
        let path = self
            .receiving
            .with_file_name(format!("capture.{extension}"));
        std::fs::rename(&self.receiving, &path)
            .with_context(|| format!("cannot rename {}", self.receiving.display()))?;
        Ok(path)
    }
}

/// Passes the input through and copies every byte read into a file.
pub struct Tee {
    /// What is read.
    pub input: Box<dyn Read + Send>,
    /// Where a copy of it goes.
    pub copy: BufWriter<File>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        if n == 0 {
            self.copy.flush()?;
        }
        Ok(n)
    }
}

/// Copies standard input into `dir` to its end and names the copy by its format
/// (`capture.pcap`, `.pcapng`, `.gz`, `.zst`): the input `report` then reads.
pub fn keep_standard_input(dir: &Path) -> anyhow::Result<PathBuf> {
    let (receiving, mut copy) = KeptInput::create(dir)?;
    let received = io::copy(&mut twsleuth_reader::pumped_stdin(), &mut copy)
        .and_then(|bytes| copy.flush().map(|()| bytes))
        .with_context(|| {
            format!(
                "cannot keep standard input in {}",
                receiving.receiving.display()
            )
        })?;
    if twsleuth_reader::interrupted() {
        anyhow::bail!(
            "interrupted after {received} bytes of standard input: no report written (the bytes are in {})",
            receiving.receiving.display()
        );
    }
    let opened = match CaptureReader::open(&receiving.receiving.to_string_lossy(), 0) {
        Ok(reader) => (reader.format(), reader.compression()),
        Err(e) => {
            // Not a capture: nothing of it is worth keeping, and a file left behind would
            // make the directory foreign to the next run.
            let _ = std::fs::remove_file(&receiving.receiving);
            anyhow::bail!("standard input: {}", e.kind);
        }
    };
    receiving.finish(Some(opened))
}
