//! Capture sets on real files: tcpdump rings (whole and wrapped), directories with files that
//! are not captures, tar archives (plain, gzip, zstd) and sets larger than the number of
//! captures kept open. Each merged set must give back the frames of the capture it was cut
//! from: same count, order, timestamps and bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use twsleuth_reader::{
    CaptureReader, CaptureSet, KEEP_OPEN, MAX_MEMBERS, MergedCaptures, ReadErrorKind,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed by this test (apt-get install {tool}): {e}"));
    assert!(out.status.success(), "{tool} {args:?}: {out:?}");
}

/// A capture of ~3.5 MB (4,000 connections of the synthetic balancer), big enough for
/// tcpdump's `-C 1` (units of 1,000,000 bytes) to cut it into 4 files.
fn load_capture(dir: &Path) -> PathBuf {
    let path = dir.join("load.pcap");
    run(
        "python3",
        &[
            repo().join("scripts/gen_load_capture.py").to_str().unwrap(),
            "--connections",
            "4000",
            "-o",
            path.to_str().unwrap(),
        ],
    );
    path
}

/// tcpdump -r SOURCE -w DIR/cap.pcap -C 1 [-W n]: the real tool's ring.
fn ring(source: &Path, dir: &Path, files: Option<u32>) {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join("cap.pcap");
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let limit = files.map(|n| n.to_string());
    let mut args = vec![
        "-r",
        source.to_str().unwrap(),
        "-w",
        out.to_str().unwrap(),
        "-C",
        "1",
        // tcpdump drops root for the user `tcpdump`, who may not write here.
        "-Z",
        user.trim(),
    ];
    if let Some(n) = &limit {
        args.extend(["-W", n]);
    }
    run("tcpdump", &args);
}

/// (timestamp, bytes) of every frame of one file.
fn frames_of(path: &Path) -> Vec<(i64, Vec<u8>)> {
    let mut reader = CaptureReader::open(path.to_str().unwrap(), 0).unwrap();
    let mut out = Vec::new();
    while reader.advance() {
        let f = reader.current().unwrap();
        out.push((f.ts_ns, f.data.to_vec()));
    }
    assert!(reader.damage().is_none());
    out
}

/// Every merged frame: (timestamp, bytes, input name, frame number).
type Merged = Vec<(i64, Vec<u8>, String, u64)>;

fn merge(set: &CaptureSet) -> (Merged, MergedCaptures) {
    let mut merged = MergedCaptures::from_set(set, false).unwrap();
    let names: Vec<String> = merged
        .readers()
        .iter()
        .map(|r| r.input().to_string())
        .collect();
    let mut out = Vec::new();
    while let Some(f) = merged.next_frame() {
        out.push((
            f.ts_ns,
            f.data.to_vec(),
            names[usize::from(f.file_index)].clone(),
            f.number,
        ));
    }
    for reader in merged.readers() {
        assert!(reader.damage().is_none(), "{:?}", reader.damage());
    }
    (out, merged)
}

fn strip(merged: &Merged) -> Vec<(i64, Vec<u8>)> {
    merged.iter().map(|m| (m.0, m.1.clone())).collect()
}

fn expand(path: &Path) -> CaptureSet {
    CaptureSet::expand(&[path.to_str().unwrap().to_string()]).unwrap()
}

#[test]
fn a_tcpdump_ring_merges_back_into_the_capture_it_was_cut_from() {
    let tmp = tempfile::tempdir().unwrap();
    let source = load_capture(tmp.path());
    let dir = tmp.path().join("ring");
    ring(&source, &dir, None);
    let set = expand(&dir);
    let names: Vec<&str> = set.members().iter().map(|m| m.name()).collect();
    let d = dir.to_str().unwrap();
    assert_eq!(
        names,
        [
            format!("{d}/cap.pcap"),
            format!("{d}/cap.pcap1"),
            format!("{d}/cap.pcap2"),
            format!("{d}/cap.pcap3"),
        ]
    );
    let original = frames_of(&source);
    let (merged, captures) = merge(&set);
    assert_eq!(merged.len(), original.len());
    assert_eq!(strip(&merged), original);
    // Frame numbers are per file, from 1, and the frame names its file.
    let second_file: Vec<&(i64, Vec<u8>, String, u64)> = merged
        .iter()
        .filter(|m| m.2.ends_with("/cap.pcap1"))
        .collect();
    assert_eq!(second_file[0].3, 1);
    assert_eq!(
        second_file.last().unwrap().3,
        second_file.len() as u64,
        "numbered 1..n in its own file"
    );
    let report = captures.set_report();
    assert_eq!(report.rings.len(), 1);
    assert!(report.rings[0].wrapped.is_none());
    assert!(report.rings[0].missing.is_empty());
    assert_eq!(report.gaps().count(), 0, "{report:?}");
    assert_eq!(report.overlaps().count(), 0);
}

#[test]
fn a_wrapped_ring_reports_the_lost_start_and_keeps_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let source = load_capture(tmp.path());
    let dir = tmp.path().join("ring");
    // 4 files' worth into 3 slots: the 4th overwrote cap.pcap0, the first file is lost.
    ring(&source, &dir, Some(3));
    let set = expand(&dir);
    assert_eq!(set.members().len(), 3);
    let (merged, captures) = merge(&set);
    let report = captures.set_report();
    let ring = &report.rings[0];
    let wrap = ring.wrapped.as_ref().expect("the ring wrapped");
    assert!(report.spans[wrap.oldest].name.ends_with("/cap.pcap1"));
    assert!(report.spans[wrap.newest].name.ends_with("/cap.pcap0"));
    // What is left is the original from the oldest file's first frame on.
    let original = frames_of(&source);
    let first_kept = merged[0].0;
    assert_eq!(first_kept, report.spans[wrap.oldest].first_ts_ns);
    let start = original.iter().position(|f| f.0 == first_kept).unwrap();
    assert!(start > 0, "the start of the capture is lost");
    assert_eq!(strip(&merged), original[start..].to_vec());
}

/// A directory as a balancer support bundle looks: captures, a note, an empty capture (a CPU
/// core that saw nothing) and an empty file.
#[test]
fn a_directory_reads_its_captures_and_lists_the_other_files_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    std::fs::create_dir(&dir).unwrap();
    let fixtures = repo().join("fixtures/capture");
    std::fs::copy(fixtures.join("en10mb.pcap"), dir.join("core0.pcap")).unwrap();
    std::fs::copy(fixtures.join("multi.pcapng.gz"), dir.join("core1")).unwrap();
    std::fs::copy(fixtures.join("empty.pcap"), dir.join("core2.pcap")).unwrap();
    std::fs::write(dir.join("notes.txt"), "Hello from the balancer\n").unwrap();
    std::fs::write(dir.join("core3.pcap"), "").unwrap();
    std::fs::create_dir(dir.join("old")).unwrap();
    let set = expand(&dir);
    let d = dir.to_str().unwrap();
    let names: Vec<&str> = set.members().iter().map(|m| m.name()).collect();
    assert_eq!(
        names,
        [
            format!("{d}/core0.pcap"),
            format!("{d}/core1"),
            format!("{d}/core2.pcap")
        ]
    );
    let skipped: Vec<(String, String)> = set
        .skipped()
        .iter()
        .map(|s| (s.name.clone(), s.reason.clone()))
        .collect();
    assert!(skipped.contains(&(format!("{d}/core3.pcap"), "empty (0 bytes)".into())));
    assert!(
        skipped.iter().any(|(n, r)| n.ends_with("/notes.txt")
            && r.contains("not a capture")
            && r.contains("\"Hello from the balancer\"")),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|(n, r)| n.ends_with("/old") && r.contains("directory"))
    );
    let (merged, captures) = merge(&set);
    assert_eq!(merged.len(), 613 + 120);
    assert_eq!(captures.readers()[2].counters().frames, 0);

    // Nothing but a note: an error that says what was found.
    let notes = tmp.path().join("notes-only");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("README"), "Hello\n").unwrap();
    let error = CaptureSet::expand(&[notes.to_str().unwrap().to_string()]).unwrap_err();
    assert!(matches!(error.kind, ReadErrorKind::NoCapture(_)));
    let message = error.to_string();
    assert!(
        message.contains("holds no capture") && message.contains("README"),
        "{message}"
    );
}

/// The ring's files in a tar archive, plain, gzip and zstd, stored out of order, with a note
/// and an empty member.
#[test]
fn tar_archives_of_a_ring_merge_back_into_the_original_in_any_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let source = load_capture(tmp.path());
    let dir = tmp.path().join("ring");
    ring(&source, &dir, None);
    let original = frames_of(&source);
    let mut builder = tar::Builder::new(Vec::new());
    for name in [
        "cap.pcap2",
        "notes.txt",
        "cap.pcap",
        "cap.pcap3",
        "empty",
        "cap.pcap1",
    ] {
        let path = dir.join(name);
        let bytes = match name {
            "notes.txt" => b"Hello, support\n".to_vec(),
            "empty" => Vec::new(),
            _ => std::fs::read(&path).unwrap(),
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("ring/{name}"), &bytes[..])
            .unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &tar_bytes).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::encode_all(&tar_bytes[..], 3).unwrap();
    for (file, bytes) in [
        ("a.tar", tar_bytes.clone()),
        ("a.tgz", gz),
        ("a.tar.zst", zst),
    ] {
        let path = tmp.path().join(file);
        std::fs::write(&path, bytes).unwrap();
        let set = expand(&path);
        let p = path.to_str().unwrap();
        let names: Vec<&str> = set.members().iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                format!("{p}:ring/cap.pcap"),
                format!("{p}:ring/cap.pcap1"),
                format!("{p}:ring/cap.pcap2"),
                format!("{p}:ring/cap.pcap3"),
            ],
            "{file}"
        );
        assert_eq!(set.skipped().len(), 2, "{file}: {:?}", set.skipped());
        let (merged, captures) = merge(&set);
        assert_eq!(merged.len(), original.len(), "{file}");
        assert_eq!(strip(&merged), original, "{file}");
        assert!(merged[0].2.starts_with(&format!("{p}:ring/cap.pcap")));
        assert!(captures.set_report().rings[0].wrapped.is_none(), "{file}");
    }
}

/// 205 files (editcap -c 3 of en10mb.pcap, named by counter and time), more than are kept
/// open: each is opened when its frames come due and closed when done.
#[test]
fn a_set_larger_than_kept_open_is_merged_with_few_files_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("split");
    std::fs::create_dir(&dir).unwrap();
    let source = repo().join("fixtures/capture/en10mb.pcap");
    run(
        "editcap",
        &[
            "-c",
            "3",
            source.to_str().unwrap(),
            dir.join("part.pcap").to_str().unwrap(),
        ],
    );
    let set = expand(&dir);
    assert_eq!(set.members().len(), 205);
    assert!(set.members().len() > KEEP_OPEN);
    let (merged, captures) = merge(&set);
    assert_eq!(strip(&merged), frames_of(&source));
    assert!(
        captures.most_open() <= 3,
        "open at once: {}",
        captures.most_open()
    );
    assert!(captures.readers().iter().all(|r| !r.is_open()));
}

/// A ring with a file deleted: the number is missing, and the silence where its frames were
/// is a gap between the files around it.
#[test]
fn a_ring_with_a_file_deleted_shows_the_hole() {
    let tmp = tempfile::tempdir().unwrap();
    let source = load_capture(tmp.path());
    let dir = tmp.path().join("ring");
    ring(&source, &dir, None);
    std::fs::remove_file(dir.join("cap.pcap2")).unwrap();
    let (_, captures) = merge(&expand(&dir));
    let report = captures.set_report();
    assert_eq!(report.rings[0].missing, vec![2]);
    let gaps: Vec<_> = report.gaps().collect();
    assert_eq!(gaps.len(), 1, "{report:?}");
    assert!(report.spans[gaps[0].from].name.ends_with("/cap.pcap1"));
    assert!(report.spans[gaps[0].to].name.ends_with("/cap.pcap3"));
    assert!(gaps[0].gap_ns > 100_000_000, "{:?}", gaps[0]);
}

/// Frame references number files with 16 bits: one capture more than that is refused, saying
/// so, before anything is read.
#[test]
fn more_captures_than_frame_references_can_number_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let header = std::fs::read(repo().join("fixtures/capture/empty.pcap")).unwrap();
    for i in 0..=MAX_MEMBERS {
        std::fs::write(tmp.path().join(format!("c{i}.pcap")), &header).unwrap();
    }
    let error = CaptureSet::expand(&[tmp.path().to_str().unwrap().to_string()]).unwrap_err();
    assert!(
        matches!(
            error.kind,
            ReadErrorKind::TooManyMembers {
                members: 65_536,
                limit: 65_535
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("mergecap"), "{error}");
}

/// A tar.gz cut short (a download that stopped): the members before the cut are read, the one
/// it cut is read up to the cut and reported as cut short, and the archive's end is listed as
/// unreadable; nothing panics.
#[test]
fn a_tar_gz_cut_short_keeps_what_came_before_the_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = repo().join("fixtures/capture");
    let mut builder = tar::Builder::new(Vec::new());
    for (name, file) in [("a.pcap", "en10mb.pcap"), ("b.pcap", "en10mb-ns.pcap")] {
        let bytes = std::fs::read(fixtures.join(file)).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &tar_bytes).unwrap();
    let gz = e.finish().unwrap();
    let path = tmp.path().join("cut.tgz");
    // Cut in the second member (en10mb.pcap is 290 kB of the ~480 kB).
    std::fs::write(&path, &gz[..gz.len() * 4 / 5]).unwrap();
    let set = expand(&path);
    assert_eq!(set.members().len(), 2);
    assert!(
        set.skipped()
            .iter()
            .any(|s| s.reason.contains("the rest of the archive cannot be read")),
        "{:?}",
        set.skipped()
    );
    let mut merged = MergedCaptures::from_set(&set, false).unwrap();
    while merged.next_frame().is_some() {}
    let readers = merged.readers();
    assert_eq!(readers[0].counters().frames, 613);
    assert!(readers[0].damage().is_none());
    let b = &readers[1];
    assert!(b.counters().frames > 0 && b.counters().frames < 347);
    let damage = b.damage().expect("the cut member is damaged");
    assert!(matches!(damage.kind, ReadErrorKind::CutShort), "{damage}");
    assert!(damage.to_string().contains("cut.tgz:b.pcap"), "{damage}");
}
