//! Opening the inputs and walking their frames in timestamp order, decoded, with a progress bar.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use twsleuth_decode::{NotTcp, TcpSegment, decode};
use twsleuth_reader::{CaptureReader, Frame, MergedCaptures};

use crate::cli::InputArgs;

/// How often (in frames) the progress bar is updated: rarely enough to cost nothing.
const PROGRESS_EVERY_FRAMES: u64 = 1 << 16;

/// Opens every input; any that cannot be read as a capture ends the run.
pub fn open_inputs(args: &InputArgs) -> anyhow::Result<MergedCaptures> {
    if args.inputs.iter().filter(|i| *i == "-").count() > 1 {
        bail!("standard input (`-`) can be read only once");
    }
    if args.inputs.len() > usize::from(u16::MAX) {
        bail!("at most {} inputs can be read in one run", u16::MAX);
    }
    let readers = args
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            CaptureReader::open(input, index as u16).context("cannot read the capture")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(MergedCaptures::new(readers))
}

/// Walks every frame, decoded, in timestamp order; shows progress on stderr.
pub fn scan(
    merged: &mut MergedCaptures,
    quiet: bool,
    mut on_frame: impl FnMut(&Frame<'_>, Result<TcpSegment, NotTcp>),
) {
    let progress = progress_bar(merged, quiet);
    let mut frames = 0u64;
    while let Some(frame) = merged.next_frame() {
        let decoded = decode(&frame);
        on_frame(&frame, decoded);
        frames += 1;
        if frames % PROGRESS_EVERY_FRAMES == 0 {
            progress.set_position(merged.raw_bytes_read());
            progress.set_message(format!("{frames} frames"));
        }
    }
    progress.finish_and_clear();
}

/// Prints each damaged input to stderr; the frames before the damage were analysed.
pub fn warn_damage(merged: &MergedCaptures) {
    for reader in merged.readers() {
        if let Some(damage) = reader.damage() {
            eprintln!("twsleuth: warning: {damage}");
        }
    }
}

fn progress_bar(merged: &MergedCaptures, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let sizes: Option<u64> = merged
        .readers()
        .iter()
        .map(CaptureReader::file_size_bytes)
        .sum();
    let bar = match sizes {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} · {msg} · ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
        // Standard input has no size: show a spinner with what has been read.
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} read {bytes_per_sec} · {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
