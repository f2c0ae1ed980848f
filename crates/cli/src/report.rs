//! `twsleuth report`: analyse the inputs in one pass, hashing them and keeping the packets of
//! the collisions the report may show (the report crate picks them and says what each packet
//! means), and have the report crate write the document, charts and data.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use twsleuth_decode::{F5NameId, F5Summary, FrameRef};
use twsleuth_flows::TrackerConfig;
use twsleuth_report::evidence::evidence;
use twsleuth_report::limits::Status;
use twsleuth_report::stream::{CHUNK_RECORDS, RecordStreams, export_records};
use twsleuth_report::{Evidence, F5Facts, ReportInput};

use crate::analyze::{Analysis, AnalysisJson, capture_point_sentences, tracker_config};
use crate::cli::{InputArgs, ReportArgs, TrackerArgs};
use crate::kept::keep_standard_input;
use crate::scan::{Hashing, Sinks};

/// Runs `twsleuth report`.
pub fn run(args: &ReportArgs, out: &mut impl Write) -> anyhow::Result<Status> {
    // Before the analysis: a long run should not end in a refusal.
    twsleuth_report::files::check_output_dir(&args.output, args.force)?;
    if !args.input.inputs.iter().any(|input| input == "-") {
        return run_keeping(args, &[], out);
    }
    // Standard input is kept in the report's directory first, and the report is of the kept
    // capture: its frame numbers and Wireshark filters point into a file that exists.
    std::fs::create_dir_all(&args.output).with_context(|| {
        format!(
            "cannot create the report directory {}",
            args.output.display()
        )
    })?;
    let kept = keep_standard_input(&args.output)?;
    eprintln!(
        "twsleuth: note: standard input is kept as {} ({} bytes): the report's frame numbers and filters refer to it",
        kept.display(),
        std::fs::metadata(&kept).map_or(0, |m| m.len())
    );
    let inputs = args
        .input
        .inputs
        .iter()
        .map(|input| match input.as_str() {
            "-" => kept.to_string_lossy().into_owned(),
            _ => input.clone(),
        })
        .collect();
    let args = ReportArgs {
        input: InputArgs {
            inputs,
            quiet: args.input.quiet,
        },
        tracker: args.tracker.clone(),
        output: args.output.clone(),
        force: args.force,
    };
    run_keeping(&args, &[kept], out)
}

/// The configuration of an analysis for a report: as `analyze`'s, keeping the packets of the
/// collisions the report shows as the inputs are read (they are read once).
pub fn report_config(args: &TrackerArgs) -> TrackerConfig {
    TrackerConfig {
        ladders: true,
        ..tracker_config(args)
    }
}

/// The sinks of an analysis for a report: records wait on the temporary disk, in order, until
/// the exports take them one chunk at a time (memory does not grow with the capture), and the
/// collisions the report shows are kept with their packets.
pub fn report_sinks() -> Sinks {
    Sinks::new(true, true, true).with_shown_collisions()
}

/// The report of `args`, whose directory was already checked; `also_ours` are files in it
/// that belong to the report (see [`twsleuth_report::write_report`]).
pub fn run_keeping(
    args: &ReportArgs,
    also_ours: &[PathBuf],
    out: &mut impl Write,
) -> anyhow::Result<Status> {
    let config = report_config(&args.tracker);
    let mut analysis = Analysis::run(
        &args.input,
        &args.tracker,
        &config,
        Hashing::Sha256,
        report_sinks(),
    )?;
    if analysis.tracked.facts.interrupted {
        anyhow::bail!(
            "interrupted after {} frames: no report written (a report covers whole captures; `twsleuth analyze` prints partial results)",
            analysis.tracked.facts.accounting.frames
        );
    }
    // Hashed while read; an input whose reading stopped at damage is hashed whole now.
    for input in &mut analysis.inputs {
        if input.damage.is_some() {
            input.sha256 = sha256_of(&input.name);
        }
    }
    write(analysis, &config, &args.output, also_ours, out)
}

/// Writes the report of `analysis` (made with [`report_config`] and [`report_sinks`]) into
/// `output`, and says so on `out`.
pub fn write(
    mut analysis: Analysis,
    config: &TrackerConfig,
    output: &Path,
    also_ours: &[PathBuf],
    out: &mut impl Write,
) -> anyhow::Result<Status> {
    let cannot_write = || format!("cannot write the report into {}", output.display());
    let kept = &mut analysis.records;
    let (Some(connections), Some(collisions), Some(successors)) = (
        kept.connections.take(),
        kept.collisions.take(),
        kept.successors.take(),
    ) else {
        unreachable!("the report's sinks keep every record");
    };
    // The tracker's tables were freed when the analysis ended, but mimalloc gives pages back
    // to the kernel only after a delay: the export's first chunks, allocated meanwhile,
    // raised the peak above the analysis's (peak RSS 215 -> 202 MiB on the bench capture,
    // paired, wall unchanged; 263 -> 241 MiB at 2 M connections).
    // SAFETY: `mi_collect` only returns free memory to the kernel; it takes no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let streams = RecordStreams {
        connections: connections.into_sorted()?,
        collisions: collisions.into_sorted()?,
        successors: successors.into_sorted()?,
    };
    let data_dir = output.join("data");
    let (records, exported) = export_records(
        Some(&data_dir),
        streams,
        &analysis.summary,
        &config.time_wait,
        (&analysis.timeline_sources.0, analysis.timeline_sources.1),
        CHUNK_RECORDS,
    )
    .with_context(cannot_write)?;
    // The collisions shown as the records left the tracker, with their packets: the same the
    // digest names, whose records came off disk without them.
    let shown = analysis.records.shown.take().unwrap_or_default();
    let mut evidence = evidence(&shown, &analysis.points.of_input);
    name_f5_rst_causes(&mut evidence, &analysis.tracked.f5);
    let summary_json = serde_json::to_value(AnalysisJson::new(&analysis, config))?;
    let input = ReportInput {
        records: &records,
        counters: &analysis.tracked.counters,
        summary: &analysis.summary,
        accounting: &analysis.tracked.facts.accounting,
        policy: &config.time_wait,
        inputs: analysis.inputs.clone(),
        evidence,
        completeness: &analysis.completeness,
        exhaustion: &analysis.exhaustion,
        f5: F5Facts {
            virtual_servers: analysis
                .tracked
                .f5
                .virtual_servers()
                .into_iter()
                .map(|v| (v.name, v.syn, v.rst))
                .collect(),
            rst_causes: analysis
                .f5_rst_causes
                .iter()
                .map(|c| (c.cause.clone(), c.collisions))
                .collect(),
        },
        capture_points: capture_point_sentences(&analysis)
            .into_iter()
            .map(|(label, sentence)| format!("{label} {sentence}"))
            .collect(),
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let written = twsleuth_report::write_report(output, &input, &summary_json, exported, also_ours)
        .with_context(cannot_write)?;
    writeln!(
        out,
        "{}",
        twsleuth_report::analysis::verdict(
            &analysis.summary,
            &analysis.tracked.counters,
            &analysis.completeness,
            &analysis.exhaustion
        )
    )?;
    writeln!(
        out,
        "Report written to {} ({} files):",
        output.display(),
        written.len()
    )?;
    for path in written {
        writeln!(out, "  {}", path.display())?;
    }
    Ok(analysis.status())
}

/// SHA-256 of a file, hex; `None` for standard input (it cannot be read twice) or a file that
/// cannot be read.
pub fn sha256_of(path: &str) -> Option<String> {
    if path == "-" {
        return None;
    }
    let mut file = File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds to each reset in the ladders the cause the BIG-IP gave it in its trailer (capture text:
/// the report's renderers escape notes).
fn name_f5_rst_causes(evidence: &mut [Evidence], f5: &F5Summary) {
    if f5.rst_cause_frames.is_empty() {
        return;
    }
    let causes: HashMap<FrameRef, F5NameId> = f5.rst_cause_frames.iter().copied().collect();
    for step in evidence.iter_mut().flat_map(|e| e.steps.iter_mut()) {
        let frame = FrameRef {
            file_index: step.file_index,
            number: step.frame,
        };
        if let Some(&cause) = causes.get(&frame) {
            let cause = f5.name(cause).escape_debug();
            step.note = format!("{}; F5 RST cause: {cause}", step.note);
        }
    }
}
