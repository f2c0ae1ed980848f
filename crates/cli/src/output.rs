//! JSON Lines exports, written atomically.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use twsleuth_report::files::write_atomically;

/// Writes one JSON object per line, as the records come.
pub fn write_jsonl<T: Serialize>(
    path: &Path,
    records: impl IntoIterator<Item = std::io::Result<T>>,
) -> anyhow::Result<()> {
    write_atomically(path, |w| {
        for record in records {
            serde_json::to_writer(&mut *w, &record?)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", path.display()))
}
