//! End-to-end tests of the `twsleuth` binary on the committed fixtures, against the oracles:
//! capinfos and tshark for counts (fixtures/capture), the kernel's own record for collisions
//! and outcomes (fixtures/lab, made by scripts/lab.sh).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(relative)
}

fn twsleuth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twsleuth"))
        .args(args)
        .output()
        .expect("twsleuth runs")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn stats(path: &Path) -> (Value, String) {
    let out = twsleuth(&["stats", "--json", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "stats failed on {}: {:?}",
        path.display(),
        out
    );
    (
        json_of(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs an oracle tool; the test suite needs Wireshark's command-line tools (.ci/run
/// installs them from Debian's packages).
fn oracle(tool: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed by the tests (apt-get install tshark): {e}"))
}

/// One frame as tshark sees it: (number, protocols, SYN, ACK, source port, destination port).
type TsharkFrame = (u64, String, bool, bool, Option<u16>, Option<u16>);

fn tshark_frames(path: &Path) -> Vec<TsharkFrame> {
    let out = oracle(
        "tshark",
        &[
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "frame.number",
            "-e",
            "frame.protocols",
            "-e",
            "tcp.flags.syn",
            "-e",
            "tcp.flags.ack",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let flag = |s: &str| s == "1" || s == "True";
            (
                f[0].parse().unwrap(),
                f[1].to_string(),
                flag(f[2]),
                flag(f[3]),
                f[4].parse().ok(),
                f[5].parse().ok(),
            )
        })
        .collect()
}

/// How many frames match a tshark display filter.
fn tshark_count(path: &Path, filter: &str) -> u64 {
    let out = oracle(
        "tshark",
        &[
            "-r",
            path.to_str().unwrap(),
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    );
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

/// capinfos' packet count: from its summary, or from "after reading N packets" when the
/// file is damaged.
fn capinfos_packets(path: &Path) -> u64 {
    let out = oracle("capinfos", &["-M", "-c", path.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(rest) = text.split("after reading ").nth(1) {
        return rest.split_whitespace().next().unwrap().parse().unwrap();
    }
    text.lines()
        .find(|l| l.starts_with("Number of packets"))
        .and_then(|l| l.split(':').nth(1))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no packet count from capinfos: {text}"))
}

fn accounting_closes(s: &Value) {
    let parts = [
        "tcp_segments",
        "other_ip",
        "non_ip",
        "malformed",
        "truncated",
        "fragments",
    ];
    // The F5 fileinfo frame: capture information, in the JSON only when there is one.
    let capture_info = s.get("capture_info").map_or(0, |n| n.as_u64().unwrap());
    let sum: u64 = parts.iter().map(|k| s[k].as_u64().unwrap()).sum::<u64>() + capture_info;
    assert_eq!(
        sum,
        s["frames"].as_u64().unwrap(),
        "accounting does not close: {s}"
    );
}

const CAPTURES: &[&str] = &[
    "en10mb.pcap",
    "en10mb-ns.pcap",
    "be-usec.pcap",
    "linux-sll.pcap",
    "linux-sll2.pcap",
    "vlan-8021q.pcap",
    "qinq.pcap",
    "raw-ipip.pcap",
    "raw101.pcap",
    "null-le.pcap",
    "loop.pcap",
    "ipv4.pcap",
    "ipv6.pcap",
    "multi.pcapng",
    "multi.pcapng.gz",
    "en10mb.pcap.gz",
    "en10mb.pcap.zst",
    "f5-trailer.pcap",
    "ipv4-fragments.pcap",
    "ipv6-exthdr.pcap",
    "empty.pcap",
    "obsolete-pb.pcapng",
    "comments.pcapng",
];

#[test]
fn stats_counts_match_capinfos_and_tshark_on_every_capture() {
    for name in CAPTURES {
        let path = fixture(&format!("capture/{name}"));
        let (s, _) = stats(&path);
        accounting_closes(&s);
        assert_eq!(
            s["frames"],
            capinfos_packets(&path),
            "{name}: frames vs capinfos"
        );
        let frames = tshark_frames(&path);
        let is_tcp = |p: &str| p.split(':').any(|l| l == "tcp") && !p.contains("icmp");
        let tcp = frames.iter().filter(|f| is_tcp(&f.1)).count() as u64;
        let syn = frames
            .iter()
            .filter(|f| is_tcp(&f.1) && f.2 && !f.3)
            .count() as u64;
        assert_eq!(s["tcp_segments"], tcp, "{name}: TCP segments vs tshark");
        assert_eq!(s["syn"], syn, "{name}: SYNs vs tshark");
        assert_eq!(s["malformed"], 0, "{name}");
        assert_eq!(s["truncated"], 0, "{name}");
    }
}

#[test]
fn snaplen_cut_frames_decode_while_the_base_tcp_header_is_whole() {
    let s54 = stats(&fixture("capture/snaplen-54.pcap")).0;
    accounting_closes(&s54);
    let tshark_tcp = tshark_count(
        &fixture("capture/snaplen-54.pcap"),
        "tcp && !icmp && !icmpv6",
    );
    // IPv4: 14 + 20 + 20 bytes: the base header is whole; IPv6 (14 + 40) keeps no TCP byte.
    assert_eq!(s54["tcp_segments"], tshark_tcp);
    assert!(s54["truncated"].as_u64().unwrap() > 0);
    let s40 = stats(&fixture("capture/snaplen-40.pcap")).0;
    accounting_closes(&s40);
    assert_eq!(s40["tcp_segments"], 0);
    assert!(s40["truncated"].as_u64().unwrap() >= tshark_tcp);
}

#[test]
fn frame_numbers_are_wiresharks_even_with_custom_blocks() {
    let path = fixture("capture/multi.pcapng");
    let dir = tempfile::tempdir().unwrap();
    let conns = dir.path().join("conns.jsonl");
    twsleuth(&[
        "analyze",
        "--quiet",
        "--connections",
        conns.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    let by_number: HashMap<u64, (Option<u16>, Option<u16>)> = tshark_frames(&path)
        .into_iter()
        .map(|f| (f.0, (f.4, f.5)))
        .collect();
    let text = std::fs::read_to_string(&conns).unwrap();
    assert!(text.lines().count() >= 3);
    for line in text.lines() {
        let c: Value = serde_json::from_str(line).unwrap();
        let (op, rp) = (
            c["orig_p"].as_u64().unwrap() as u16,
            c["resp_p"].as_u64().unwrap() as u16,
        );
        for key in ["first_frame", "last_frame"] {
            let number = c[key]["number"].as_u64().unwrap();
            let ports = by_number[&number];
            assert!(
                ports == (Some(op), Some(rp)) || ports == (Some(rp), Some(op)),
                "{key} {number} is not a frame of {op}<->{rp} in Wireshark: {ports:?}"
            );
        }
    }
}

#[test]
fn damaged_files_keep_the_frames_before_the_damage_and_name_the_offset() {
    let cases = [
        (
            "truncated-last.pcap",
            612,
            "byte offset 290256",
            "cut short",
        ),
        (
            "truncated-header.pcap",
            612,
            "byte offset 290256",
            "cut short",
        ),
        (
            "corrupt-caplen.pcap",
            306,
            "byte offset 58880",
            "2147483647",
        ),
        ("corrupt.pcapng", 2, "byte offset 324", "corrupt"),
    ];
    for (name, frames, offset, what) in cases {
        let path = fixture(&format!("capture/{name}"));
        let (s, stderr) = stats(&path);
        assert_eq!(s["frames"], frames, "{name}");
        assert_eq!(s["frames"], capinfos_packets(&path), "{name} vs capinfos");
        assert_eq!(s["damaged_inputs"], 1, "{name}");
        accounting_closes(&s);
        assert!(
            stderr.contains(name) && stderr.contains(offset) && stderr.contains(what),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("after frame {frames}")),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn inputs_that_are_not_captures_fail_with_one_line_and_exit_2() {
    for (name, says) in [
        ("not-a-capture.txt", "it is text"),
        (
            "header-only-garbage.bin",
            "starts with the bytes 5c 17 9e 03",
        ),
        ("zero-length.pcap", "empty"),
        ("does-not-exist.pcap", "cannot read"),
        (
            "foreign/solaris.snoop",
            "editcap -F pcapng solaris.snoop solaris.pcapng",
        ),
        ("foreign/nstrace-2.0.cap", "NetScaler"),
        ("foreign/ethernet.erf", "editcap -T ether -F pcapng"),
    ] {
        let path = fixture(&format!("capture/{name}"));
        let out = twsleuth(&["stats", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(says),
            "{name}: {stderr}"
        );
    }
    // A directory of files none of which is a capture.
    let out = twsleuth(&["stats", fixture("capture/foreign").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("holds no capture")
            && stderr.contains("ascend.txt: a Lucent/Ascend router trace (text);"),
        "{stderr}"
    );
    let out = twsleuth(&["analyze", "--time-wait", "6O", "x.pcap"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn standard_input_and_several_files_are_read() {
    let file = fixture("capture/en10mb.pcap.zst");
    let piped = Command::new(env!("CARGO_BIN_EXE_twsleuth"))
        .args(["stats", "--json", "-"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert_eq!(json_of(&piped)["frames"], 613);
    let both = twsleuth(&[
        "stats",
        "--json",
        fixture("capture/en10mb.pcap").to_str().unwrap(),
        fixture("capture/linux-sll2.pcap").to_str().unwrap(),
    ]);
    let s = json_of(&both);
    assert_eq!(s["frames"], 613 + 347);
    assert_eq!(s["files"].as_array().unwrap().len(), 2);
    accounting_closes(&s);
}

fn analyze_json(paths: &[&Path], extra: &[&str]) -> (Value, Option<i32>) {
    let mut args = vec!["analyze", "--json", "--quiet"];
    args.extend_from_slice(extra);
    let strings: Vec<String> = paths
        .iter()
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    args.extend(strings.iter().map(String::as_str));
    let out = twsleuth(&args);
    (json_of(&out), out.status.code())
}

/// Every lab capture, from every vantage point, and its views holding one direction only
/// (scripts/make-one-sided.sh), against what the kernel recorded.
#[test]
fn analyze_agrees_with_the_kernel_in_every_lab_scenario() {
    let scenarios = [
        "accepted",
        "rejected",
        "haproxy",
        "haproxy-busy",
        "clean",
        "client-reuse",
        "paws",
        "lb-exhaustion",
    ];
    for scenario in scenarios {
        let dir = fixture(&format!("lab/{scenario}"));
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap())
                .unwrap();
        let mut captures: Vec<(String, bool)> = truth["captures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["file"].as_str().unwrap().to_string(), false))
            .collect();
        for view in ["one-sided-server.pcap", "one-sided-client.pcap"] {
            if dir.join(view).exists() {
                captures.push((view.to_string(), true));
            }
        }
        for (file, one_sided) in captures {
            let path = dir.join(&file);
            let tmp = tempfile::tempdir().unwrap();
            let collisions_path = tmp.path().join("c.jsonl");
            let (a, code) = analyze_json(
                &[&path],
                &["--collisions", collisions_path.to_str().unwrap()],
            );
            let at = format!("{scenario}/{file}");
            // A capture of another leg (HAProxy's frontend) has its own figures and attempts.
            let (expected, attempts) = match truth["expected"]["by_capture"].get(&file) {
                Some(of_capture) => (of_capture, &truth["frontend_attempts"]),
                None => (&truth["expected"], &truth["attempts"]),
            };
            let connections = expected["connections_by_capture"]
                .get(&file)
                .unwrap_or(&expected["connections"]);
            assert_eq!(a["connections"], *connections, "{at}");
            assert_eq!(a["collisions"]["total"], expected["collisions"], "{at}");
            for (outcome, n) in expected["collisions_by_outcome"].as_object().unwrap() {
                assert_eq!(a["collisions"][outcome], *n, "{at}: {outcome}");
            }
            assert_eq!(
                a["client_side_reuse"], expected["client_side_reuse"],
                "{at}"
            );
            let collided = expected["collisions"].as_u64().unwrap() > 0;
            // The balancer's own pool ran out: seen on its backend leg only.
            let exhausted = scenario == "lb-exhaustion" && file == "lb-backend.pcap";
            assert_eq!(
                a["port_exhaustion"].as_array().unwrap().len(),
                usize::from(exhausted),
                "{at}"
            );
            // One direction is never an all-clear: exit status 3 where nothing was found.
            let status = if collided || exhausted {
                1
            } else if one_sided {
                3
            } else {
                0
            };
            assert_eq!(code, Some(status), "{at}: exit code");
            assert_eq!(a["complete"], !one_sided, "{at}");
            let inferred = if one_sided {
                &expected["collisions"]
            } else {
                &json!(0)
            };
            assert_eq!(a["collisions"]["inferred"], *inferred, "{at}");
            // The server's PAWSTimewait counter: every PAWS rejection, and no other reason.
            let paws = expected["paws_rejections"].as_u64().unwrap_or(0);
            assert_eq!(a["reasons"]["paws"], paws, "{at}");
            assert_eq!(
                a["reasons"]["seq_not_after_rcv_nxt"],
                expected["collisions_by_outcome"]["rejected_recovered"]
                    .as_u64()
                    .unwrap()
                    - paws,
                "{at}"
            );
            if collided {
                assert_eq!(a["prediction_agreement"], 1.0, "{at}");
                assert_eq!(
                    a["time_wait_holders"]["server"], expected["collisions"],
                    "{at}"
                );
            }
            // Attempt by attempt: each collision is an attempt the kernel saw collide, with
            // the same outcome, and the TIME_WAIT age agrees within 50 ms.
            let ours = jsonl(&collisions_path);
            let outcomes = expected["collisions_by_outcome"].as_object().unwrap();
            let kernel: Vec<&Value> = attempts
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| outcomes.contains_key(t["outcome"].as_str().unwrap()))
                .collect();
            assert_eq!(ours.len(), kernel.len(), "{at}");
            for c in &ours {
                let ts = c["ts_ns"].as_i64().unwrap() as f64 / 1e9;
                // The nearest attempt on that port (haproxy-busy's come round every 0.5 s).
                let from_ours = |t: &&&Value| (t["start"].as_f64().unwrap() - ts).abs();
                let attempt = kernel
                    .iter()
                    .filter(|t| t["src_port"] == c["orig_p"] && from_ours(t) < 0.5)
                    .min_by(|a, b| from_ours(a).total_cmp(&from_ours(b)))
                    .unwrap_or_else(|| panic!("{at}: no kernel collision for {c}"));
                assert_eq!(attempt["outcome"], c["outcome"], "{at}: {c}");
                assert_eq!(c["inferred"], one_sided, "{at}: {c}");
                // The rule of tcp_timewait_state_process that decided it: a rejection's
                // reason is PAWS where the kernel counted a PAWS rejection.
                if c["outcome"] == "rejected_recovered" {
                    let (rule, reason) = if attempt["reason"] == "paws" {
                        ("paws_reject", "paws")
                    } else {
                        ("seq_not_after_rcv_nxt", "seq_not_after_rcv_nxt")
                    };
                    assert_eq!(c["linux_rule"], rule, "{at}: {c}");
                    assert_eq!(c["reason"], reason, "{at}: {c}");
                } else {
                    assert_eq!(c["reason"], Value::Null, "{at}: {c}");
                }
                // The client's RST in SYN-SENT (its tcp_send_reset tracepoint) ended the
                // server's TIME_WAIT; a capture of the server's segments alone cannot show it.
                let client_reset = attempt["client_rst_during_connect"].as_u64().unwrap_or(0) > 0;
                assert_eq!(
                    c["time_wait_assassinated"],
                    client_reset && file != "one-sided-server.pcap",
                    "{at}: {c}"
                );
                if let Some(age) = attempt["server_tw_age_s"].as_f64() {
                    let ours = c["time_wait_age_ns"].as_i64().unwrap() as f64 / 1e9;
                    assert!((age - ours).abs() < 0.05, "{at}: age {age} vs {ours}");
                }
            }
        }
    }
}

/// Every SYN that tshark flags `tcp.analysis.reused_ports` opens one of our incarnations on a
/// reused tuple (a collision or a reuse outside TIME_WAIT), or retransmits one.
#[test]
fn tshark_reused_ports_are_all_explained() {
    for path in [
        fixture("lab/haproxy/lb-backend.pcap"),
        fixture("lab/rejected/client.pcap"),
        fixture("lab/client-reuse/server.pcap"),
    ] {
        let out = oracle(
            "tshark",
            &[
                "-r",
                path.to_str().unwrap(),
                "-Y",
                "tcp.analysis.reused_ports && tcp.flags.syn==1 && tcp.flags.ack==0",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ],
        );
        let flagged: Vec<u64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert!(!flagged.is_empty(), "{}", path.display());
        let tmp = tempfile::tempdir().unwrap();
        let conns = tmp.path().join("conns.jsonl");
        analyze_json(&[&path], &["--connections", conns.to_str().unwrap()]);
        let reused: Vec<(u64, u64)> = jsonl(&conns)
            .into_iter()
            .filter(|c| !c["prev_uid"].is_null())
            .map(|c| {
                (
                    c["first_frame"]["number"].as_u64().unwrap(),
                    c["last_frame"]["number"].as_u64().unwrap(),
                )
            })
            .collect();
        for frame in flagged {
            assert!(
                reused
                    .iter()
                    .any(|&(first, last)| first <= frame && frame <= last),
                "{}: tshark's reused-port SYN in frame {frame} is not in a reused incarnation",
                path.display()
            );
        }
    }
}

#[test]
fn findings_do_not_depend_on_the_number_of_threads() {
    let path = fixture("lab/haproxy/server.pcap");
    let outputs: Vec<(String, String)> = ["1", "2", "5"]
        .iter()
        .map(|threads| {
            let tmp = tempfile::tempdir().unwrap();
            let (conns, cols) = (tmp.path().join("a"), tmp.path().join("b"));
            twsleuth(&[
                "analyze",
                "--quiet",
                "--threads",
                threads,
                "--connections",
                conns.to_str().unwrap(),
                "--collisions",
                cols.to_str().unwrap(),
                path.to_str().unwrap(),
            ]);
            (
                std::fs::read_to_string(conns).unwrap(),
                std::fs::read_to_string(cols).unwrap(),
            )
        })
        .collect();
    assert_eq!(outputs[0].1.lines().count(), 700);
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn synthetic_balancer_capture_matches_its_generator() {
    let dir = fixture("synthetic");
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lb-cycle.truth.json")).unwrap())
            .unwrap();
    let (a, code) = analyze_json(&[&dir.join("lb-cycle.pcap.gz")], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(a["connections"], truth["connections"]);
    let t = &truth["collisions"];
    let mut expected = BTreeMap::new();
    expected.insert("total", t["total"].clone());
    expected.insert("accepted", t["accepted"].clone());
    expected.insert("rejected_recovered", t["rejected_recovered"].clone());
    expected.insert("unanswered", t["unanswered_recovered"].clone());
    for (k, v) in expected {
        assert_eq!(a["collisions"][k], v, "{k}");
    }
    assert_eq!(a["prediction_agreement"], 1.0);
    let min_reuse = a["sources"][0]["min_reuse_interval_ns"].as_f64().unwrap() / 1e9;
    assert!((min_reuse - truth["min_port_reuse_interval_s"].as_f64().unwrap()).abs() < 1e-5);
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example reports under reports/ are what the tool makes now, byte for byte: reports are
/// deterministic, and scripts/make-reports.sh regenerates them.
#[test]
fn reports_match_the_committed_examples() {
    // With the exit status of each: 1 collisions found, 0 none and nothing could hide one.
    let examples = [
        (
            "haproxy-lb-backend",
            "fixtures/lab/haproxy/lb-backend.pcap",
            1,
        ),
        ("rejected-server", "fixtures/lab/rejected/server.pcap", 1),
        ("clean-server", "fixtures/lab/clean/server.pcap", 0),
        (
            "synthetic-lb-cycle",
            "fixtures/synthetic/lb-cycle.pcap.gz",
            1,
        ),
    ];
    for (name, capture, status) in examples {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_twsleuth"))
            .current_dir(repo_root())
            .args([
                "report",
                "--quiet",
                // As scripts/make-reports.sh: the default follows the machine.
                "--max-memory",
                "1GiB",
                capture,
                "-o",
                tmp.path().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(status), "{name}: {out:?}");
        let expected = repo_root().join("reports").join(name);
        let mut compared = 0;
        for sub in ["", "charts", "data"] {
            for entry in std::fs::read_dir(expected.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    continue;
                }
                let fresh = tmp.path().join(sub).join(path.file_name().unwrap());
                assert!(
                    std::fs::read(&path).unwrap() == std::fs::read(&fresh).unwrap(),
                    "{} differs: run scripts/make-reports.sh and review the diff",
                    path.display()
                );
                compared += 1;
            }
        }
        assert!(compared >= 13, "{name}: only {compared} files");
    }
}

/// `-o DIR` holding files twsleuth did not write is refused before any input is read, unless
/// `--force`; a rerun into a directory holding only its own earlier report replaces it whole
/// (a chart the new capture does not have is removed).
#[test]
fn report_refuses_foreign_files_and_replaces_its_own_earlier_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let out_arg = out.to_str().unwrap();
    // The input does not exist: the directory is checked first, so the refusal is about it.
    let refused = twsleuth(&["report", "--quiet", "no-such-capture.pcap", "-o", out_arg]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("1 file(s) twsleuth did not write (notes.txt)")
            && stderr.contains("--force"),
        "{stderr}"
    );
    let haproxy = fixture("lab/haproxy/lb-backend.pcap");
    let forced = twsleuth(&[
        "report",
        "--quiet",
        "--force",
        haproxy.to_str().unwrap(),
        "-o",
        out_arg,
    ]);
    assert_eq!(forced.status.code(), Some(1), "{forced:?}");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    std::fs::remove_file(out.join("notes.txt")).unwrap();
    let listed = std::fs::read_to_string(out.join(".twsleuth-report")).unwrap();
    let haproxy_charts: Vec<String> = listed
        .lines()
        .filter(|l| l.starts_with("charts/port-reuse-"))
        .map(String::from)
        .collect();
    assert!(!haproxy_charts.is_empty(), "{listed}");
    // Another capture, from other sources, into the same directory: no --force needed, and
    // nothing of the first report's charts of its sources is left.
    let clean = fixture("lab/clean/server.pcap");
    let rerun = twsleuth(&["report", "--quiet", clean.to_str().unwrap(), "-o", out_arg]);
    assert_eq!(rerun.status.code(), Some(0), "{rerun:?}");
    let relisted = std::fs::read_to_string(out.join(".twsleuth-report")).unwrap();
    for chart in &haproxy_charts {
        let kept = relisted.lines().any(|l| l == chart);
        assert_eq!(out.join(chart).exists(), kept, "{chart}");
    }
    let mut on_disk = 0;
    for sub in ["", "charts", "data"] {
        for entry in std::fs::read_dir(out.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.file_name().unwrap() != ".twsleuth-report" {
                let relative = path
                    .strip_prefix(&out)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                assert!(relisted.lines().any(|l| l == relative), "stale {relative}");
                on_disk += 1;
            }
        }
    }
    assert_eq!(on_disk, relisted.lines().count());
}

#[test]
fn report_figures_agree_with_the_kernel_and_charts_are_valid_svg() {
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lab/haproxy/truth.json")).unwrap())
            .unwrap();
    let dir = repo_root().join("reports/haproxy-lb-backend");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data/summary.json")).unwrap())
            .unwrap();
    let expected = &truth["expected"];
    assert_eq!(summary["collisions"]["total"], expected["collisions"]);
    assert_eq!(summary["connections"], expected["connections"]);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| Collisions with TIME_WAIT | 700 (accepted 700, rejected then recovered 0,"),
        "{md}"
    );
    assert!(md.contains("held in TIME_WAIT by the server, which closed first"));
    assert!(md.contains("| Connections | 800 |"));
    // The evidence opens the first collision in Wireshark, with a packet ladder.
    assert!(md.contains("**First collision:**"));
    assert!(md.contains("&& frame.number>="));
    assert!(md.contains("SYN-ACK, ISN = old snd_nxt + 65537: Linux TIME_WAIT takeover"));
    for entry in std::fs::read_dir(dir.join("charts")).unwrap() {
        let path = entry.unwrap().path();
        let svg = std::fs::read_to_string(&path).unwrap();
        let doc = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("port-reuse")
        {
            assert!(svg.contains("accepted (700)"), "{}", path.display());
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let charts = std::fs::read_dir(dir.join("charts")).unwrap().count();
    assert_eq!(charts, 6, "a port-reuse chart and five others");
    assert_eq!(html.matches("<svg").count(), charts, "charts inlined");
    for outside in ["<script", "<link", "src=", "@import", "url("] {
        assert!(
            !html.contains(outside),
            "report.html fetches or runs something: {outside}"
        );
    }
    let clean =
        std::fs::read_to_string(repo_root().join("reports/clean-server/report.md")).unwrap();
    assert!(clean.contains("No TIME_WAIT collision"));
}

/// Runs `twsleuth report` on a lab capture and returns the report's directory and the
/// scenario's truth.
fn lab_report(scenario: &str, capture: &str) -> (tempfile::TempDir, Value) {
    let dir = fixture(&format!("lab/{scenario}"));
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = twsleuth(&[
        "report",
        "--quiet",
        dir.join(capture).to_str().unwrap(),
        "-o",
        out_dir.path().to_str().unwrap(),
        "--force",
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out_dir, truth)
}

/// `data/collisions.csv` as one map per row, column name → value.
fn collisions_csv(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("data/collisions.csv")).unwrap();
    let mut lines = text.lines();
    let header = csv_cells(lines.next().unwrap());
    lines
        .map(|line| header.iter().cloned().zip(csv_cells(line)).collect())
        .collect()
}

/// The ladders of a report's evidence (its ```text blocks in report.md), one per collision
/// shown.
fn report_ladders(dir: &Path) -> Vec<String> {
    let markdown = std::fs::read_to_string(dir.join("report.md")).unwrap();
    markdown
        .split("```text\n")
        .skip(1)
        .map(|block| block[..block.find("```").unwrap()].to_string())
        .collect()
}

/// The records of a JSONL export (`--connections`, `--collisions`).
fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each connection's start, source port, packets each way and SYN retransmissions, sorted:
/// what one capture point counts, to compare with another analysis of it.
fn packet_counts(connections: &[Value]) -> Vec<(i64, u64, u64, u64, u64)> {
    let mut rows: Vec<_> = connections
        .iter()
        .map(|c| {
            (
                c["ts_ns"].as_i64().unwrap(),
                c["orig_p"].as_u64().unwrap(),
                c["orig_pkts"].as_u64().unwrap(),
                c["resp_pkts"].as_u64().unwrap(),
                c["syn_retransmits"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort_unstable();
    rows
}

/// One CSV line's cells: quoted cells may hold commas (a Wireshark filter's frame set) and
/// doubled quotes.
fn csv_cells(line: &str) -> Vec<String> {
    let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(ch),
        }
    }
    cells.push(cell);
    cells
}

/// The truth's attempts that the kernel counted as a PAWS rejection (server `PAWSTimewait`
/// stepped during their connect()): their source ports.
fn paws_ports(truth: &Value) -> Vec<String> {
    let mut ports: Vec<String> = truth["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["reason"] == "paws")
        .map(|a| a["src_port"].to_string())
        .collect();
    ports.sort();
    ports
}

#[test]
fn report_blames_paws_rejections_on_the_timestamp_clock() {
    let (dir, truth) = lab_report("paws", "server.pcap");
    let rows = collisions_csv(dir.path());
    let mut paws: Vec<String> = rows
        .iter()
        .filter(|r| r["reason"] == "paws")
        .map(|r| r["orig_p"].clone())
        .collect();
    paws.sort();
    assert_eq!(paws, paws_ports(&truth));
    assert_eq!(
        paws.len() as u64,
        truth["expected"]["paws_rejections"].as_u64().unwrap()
    );
    assert!(
        rows.iter()
            .all(|r| r["reason"] == "paws" || r["reason"].is_empty()),
        "no other reason: the kernel counted every rejection as PAWS"
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let verdict = md.lines().find(|l| l.starts_with("**TIME_WAIT")).unwrap();
    assert!(
        verdict.contains(&format!("Refused: {} by PAWS", paws.len())),
        "{verdict}"
    );
    // The remedy follows the reason: the clock, never "turn timestamps on".
    let recommendations =
        &md[md.find("## Recommendations").unwrap()..md.find("## Method").unwrap()];
    assert!(
        recommendations.contains("Fix the timestamp clock"),
        "{recommendations}"
    );
    assert!(!recommendations.contains("Timestamps on both sides"));
    assert!(!recommendations.contains("tcp_timestamps = 1"));
    // The ladder of each PAWS rejection shows the numbers PAWS compared: the SYN's TSval
    // (the client read it with getsockopt(TCP_TIMESTAMP) at connect(); the README measured
    // the wire 0 to 5 ms later) and the bare ACK's TSecr, the server's ts_recent (the FIN's
    // TSval, read just before close(): 0 to 2 ms later on the wire).
    let attempts = truth["attempts"].as_array().unwrap();
    let mut checked = 0;
    let mut port = None;
    let mut syn_seen = false;
    for line in md.lines() {
        if line.starts_with("**") {
            port = line
                .split_once("10.245.1.1:")
                .and_then(|(_, rest)| rest.split(' ').next())
                .and_then(|p| p.parse::<u64>().ok());
            syn_seen = false;
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(port) = port else { continue };
        let attempt = attempts
            .iter()
            .find(|a| a["src_port"] == port && a["reason"] == "paws");
        let Some(attempt) = attempt else { continue };
        if line.contains("Linux's PAWS check refuses it") {
            let tsval: i64 = fields[9].parse().unwrap();
            let delta = tsval - attempt["syn_tsval"].as_i64().unwrap();
            assert!((0..=5).contains(&delta), "{line}: {delta}");
            syn_seen = true;
        } else if syn_seen && line.contains("bare ACK with the old connection's numbers") {
            let tsecr: i64 = fields[10].parse().unwrap();
            let delta = tsecr - attempt["prev_ts_recent"].as_i64().unwrap();
            assert!((0..=2).contains(&delta), "{line}: {delta}");
            assert!(line.contains("TSecr = its ts_recent"), "{line}");
            checked += 1;
        }
    }
    assert!(checked >= 1, "no PAWS ladder in {md}");
    assert!(
        md.lines()
            .filter(|l| l.contains("time (ms)  frame"))
            .all(|l| l.contains("TSval       TSecr")),
        "every ladder of a capture with timestamps shows them"
    );
}

#[test]
fn report_asks_for_timestamps_where_sequence_numbers_alone_rejected() {
    let (dir, truth) = lab_report("rejected", "server.pcap");
    let attempts = truth["attempts"].as_array().unwrap();
    assert!(attempts.iter().all(|a| a["timestamps"] == false));
    let rejected = truth["expected"]["collisions_by_outcome"]["rejected_recovered"]
        .as_u64()
        .unwrap();
    let rows = collisions_csv(dir.path());
    assert_eq!(
        rows.iter()
            .filter(
                |r| r["reason"] == "seq_not_after_rcv_nxt" && r["time_wait_assassinated"] == "true"
            )
            .count() as u64,
        rejected
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "{rejected} for a sequence number not after the old rcv_nxt ({rejected} without TCP timestamps)"
        )),
        "{md}"
    );
    let recommendations =
        &md[md.find("## Recommendations").unwrap()..md.find("## Method").unwrap()];
    assert!(recommendations.contains("**Timestamps on both sides.**"));
    assert!(recommendations.contains("RFC 6191"));
    assert!(!recommendations.contains("PAWS"));
    // Recovered through the client's RST: the kernel's tcp_send_reset, one per collision.
    let resets = truth["trace"]["resets_sent"].as_array().unwrap().len() as u64;
    assert!(md.contains(&format!("| Recovered by ending the TIME_WAIT | {resets} (")));
    assert!(md.contains("RFC 1337 assassination"));
    // Timestamps off (truth: `timestamps` false for every attempt): the ladders have no
    // TSval/TSecr columns.
    let ladder = md.lines().find(|l| l.contains("time (ms)  frame")).unwrap();
    assert!(!ladder.contains("TSval"), "{ladder}");
}

#[test]
fn report_with_two_reasons_shows_a_ladder_and_a_remedy_for_each() {
    // The rejected scenario (timestamps off) and the PAWS one, read together.
    let truth = |scenario: &str| -> Value {
        let path = fixture(&format!("lab/{scenario}/truth.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let (paws, rejected) = (truth("paws"), truth("rejected"));
    let out_dir = tempfile::tempdir().unwrap();
    let out = twsleuth(&[
        "report",
        "--quiet",
        fixture("lab/rejected/server.pcap").to_str().unwrap(),
        fixture("lab/paws/server.pcap").to_str().unwrap(),
        "-o",
        out_dir.path().to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let md = std::fs::read_to_string(out_dir.path().join("report.md")).unwrap();
    let paws_n = paws["expected"]["paws_rejections"].as_u64().unwrap();
    let seq_n = rejected["expected"]["collisions_by_outcome"]["rejected_recovered"]
        .as_u64()
        .unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| Refused, by reason |"))
        .unwrap();
    assert!(row.contains(&format!("| {paws_n} by PAWS")), "{row}");
    assert!(
        row.contains(&format!("; {seq_n} for a sequence number not after")),
        "{row}"
    );
    // Each recovery followed the client's RST: the clients' TcpOutRsts in both runs.
    let resets = |t: &Value| {
        t["namespaces"]["client"]["nstat_delta"]["TcpOutRsts"]
            .as_u64()
            .unwrap()
    };
    assert!(md.contains(&format!(
        "| Recovered by ending the TIME_WAIT | {} (",
        resets(&paws) + resets(&rejected)
    )));
    // The first and worst collisions are both from the rejected run: PAWS gets an example.
    assert!(
        md.contains("**Example of a refusal (PAWS: TSval older than the TIME_WAIT's ts_recent):**")
    );
    assert!(md.contains("Linux's PAWS check refuses it"));
    assert!(md.contains("no timestamps: Linux refuses it"));
    let recommendations =
        &md[md.find("## Recommendations").unwrap()..md.find("## Method").unwrap()];
    assert!(recommendations.contains("**Fix the timestamp clock, not the timestamps (PAWS).**"));
    assert!(recommendations.contains("**Timestamps on both sides.**"));
}

#[test]
fn report_says_accepted_collisions_cost_nothing_and_what_would_change_that() {
    let (dir, truth) = lab_report("haproxy", "lb-backend.pcap");
    let accepted = truth["expected"]["collisions_by_outcome"]["accepted"]
        .as_u64()
        .unwrap();
    assert_eq!(accepted, truth["expected"]["collisions"].as_u64().unwrap());
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains(&format!(
        "all {accepted} were accepted at their first SYN, which cost nothing"
    )));
    let recommendations =
        &md[md.find("## Recommendations").unwrap()..md.find("## Method").unwrap()];
    for what in [
        "**These collisions cost nothing today.**",
        "a timestamp clock that goes back",
        "timestamps off on either side",
        "a failover to a server that is not Linux",
        "**More SNAT addresses, as margin only.**",
    ] {
        assert!(recommendations.contains(what), "{what}: {recommendations}");
    }
    assert!(!recommendations.contains("**More SNAT addresses.**"));
}

#[test]
fn report_names_who_holds_time_wait_and_sizes_only_the_servers() {
    // The kernel's TcpExtTW counts the TIME_WAITs each namespace entered: who closed first.
    for (scenario, capture, holder) in [
        ("client-reuse", "server.pcap", "client"),
        ("paws", "server.pcap", "server"),
        ("haproxy", "lb-backend.pcap", "server"),
    ] {
        let (dir, truth) = lab_report(scenario, capture);
        let entered = &truth["namespaces"][holder]["nstat_delta"]["TcpExtTW"];
        let connections = &truth["expected"]["connections"];
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        let named = format!("The {holder} closed first in {entered} of {connections} connections");
        let row = md
            .lines()
            .find(|l| l.starts_with("| TIME_WAIT held by (who closed first) |"))
            .unwrap();
        assert!(row.contains(&named), "{scenario}: {row}");
        let capacity = &md[md.find("## Capacity model").unwrap()..md.find("## Charts").unwrap()];
        let row = capacity
            .lines()
            .find(|l| l.starts_with("| 10.245."))
            .unwrap();
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | source | ports | destinations | tuples | sustainable | peak | mean | holder | addresses | full range |
        if holder == "client" {
            assert!(md.contains(&named), "the verdict names the client: {md}");
            assert_eq!(cells[9], "– (server holds no TIME_WAIT)", "{row}");
            assert_eq!(cells[5], "–", "{row}");
        } else {
            assert!(cells[9].parse::<u64>().is_ok(), "{row}");
        }
    }
}

/// Every input the fuzzers found a crash with (fixtures/fuzz) goes through the whole tool,
/// report included: the run ends normally (exit 0, or 1 for collisions found, or 2 for a
/// damaged file), never with a panic, and the accounting closes.
#[test]
fn inputs_that_crashed_the_fuzzers_now_run_to_the_end() {
    let dir = fixture("fuzz");
    // The end_to_end and reader targets' inputs are captures; the decode target's are single
    // frames (replayed by scripts/fuzz.sh and the decoder's own regression tests).
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("end_to_end-") || name.starts_with("reader-")
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 3, "fixtures/fuzz lost its inputs");
    for input in &inputs {
        let out_dir = tempfile::tempdir().unwrap();
        let out = twsleuth(&[
            "report",
            "--quiet",
            "--output",
            out_dir.path().to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0..=3)),
            "{} ended with {code:?}: {}",
            input.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let (summary, _) = analyze_json(&[input], &[]);
        accounting_closes(&summary["accounting"]);
    }
}

/// A SYN flood and a port scan (scripts/gen_flood_capture.py) mixed into the HAProxy lab
/// capture, analysed with a small memory cap: the flood is evicted and counted, and the lab's
/// collisions are all still found, with the same outcomes.
#[test]
fn a_syn_flood_within_a_memory_cap_hides_no_collision() {
    let base = fixture("lab/haproxy/lb-backend.pcap");
    let dir = tempfile::tempdir().unwrap();
    let flood = dir.path().join("flood.pcap");
    let made = Command::new("python3")
        .arg(repo_root().join("scripts/gen_flood_capture.py"))
        .args(["--base", base.to_str().unwrap(), "--syns", "60000"])
        .args(["--scan-ports", "5000", "-o", flood.to_str().unwrap()])
        .output()
        .expect("python3 runs the flood generator");
    assert!(made.status.success(), "{made:?}");

    let (alone, _) = analyze_json(&[&base], &[]);
    let (flooded, code) = analyze_json(&[&flood], &["--max-memory", "4MiB"]);
    assert_eq!(code, Some(1), "collisions are reported");
    assert_eq!(flooded["collisions"], alone["collisions"]);
    let t = &flooded["tracker"];
    let count = |key: &str| t[key].as_u64().unwrap();
    assert!(count("memory_evictions") > 10_000, "{t}");
    // Every flood SYN and scan probe is a failed attempt, but for the rare flood SYN that
    // drew a port already used by an earlier one (a reuse, not a fresh tuple).
    assert!((64_900..=65_000).contains(&count("failed_attempts")), "{t}");
    assert_eq!(count("time_wait_evictions"), 0, "{t}");
    accounting_closes(&flooded["accounting"]);
    assert_eq!(
        flooded["accounting"]["tcp_segments"].as_u64().unwrap(),
        count("segments")
    );

    let (roomy, _) = analyze_json(&[&flood], &[]);
    assert_eq!(roomy["tracker"]["memory_evictions"], 0);
    assert_eq!(roomy["collisions"], alone["collisions"]);
}

/// The same capture given twice (the same frames in two merged files, as a bridge capturing
/// every frame twice would give): every segment that can be told apart from a retransmission
/// is counted once as a duplicate, none of the capture alone is (its retransmissions included,
/// some 13 µs after the original on the lab's veth), and the collisions and their outcomes are
/// those of the capture alone.
#[test]
fn frames_captured_twice_change_no_finding() {
    for scenario in ["haproxy/lb-backend.pcap", "rejected/server.pcap"] {
        let path = fixture(&format!("lab/{scenario}"));
        let (alone, _) = analyze_json(&[&path], &[]);
        let (twice, _) = analyze_json(&[&path, &path], &[]);
        assert_eq!(twice["collisions"], alone["collisions"], "{scenario}");
        assert_eq!(twice["connections"], alone["connections"], "{scenario}");
        // What can be told apart from a retransmission: an IP identification (Linux sends its
        // SYN-ACKs and RSTs with 0) and payload or SYN, FIN, RST.
        let carrying = tshark_count(
            &path,
            "ip.id != 0 && (tcp.len > 0 || tcp.flags.syn == 1 || tcp.flags.fin == 1 || tcp.flags.reset == 1)",
        );
        assert_eq!(
            twice["tracker"]["duplicate_segments"].as_u64().unwrap(),
            carrying,
            "{scenario}"
        );
        assert_eq!(alone["tracker"]["duplicate_segments"], 0, "{scenario}");
    }
}

/// A capture on a pipe that stays open (a live `tcpdump -w -`): Ctrl-C ends the reading, the
/// results so far come out marked partial, and the exit code is 130.
#[test]
fn ctrl_c_on_an_endless_pipe_prints_partial_results_and_exits_130() {
    use std::io::Write as _;
    use std::process::Stdio;
    let path = fixture("lab/haproxy/lb-backend.pcap");
    let (whole, _) = analyze_json(&[&path], &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_twsleuth"))
        .args(["analyze", "--json", "--quiet", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&std::fs::read(&path).unwrap()).unwrap();
    stdin.flush().unwrap();
    // The pipe stays open (stdin is held); give the tool time to read what was written.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to the child process started above; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let partial = json_of(&out);
    assert_eq!(partial["partial"], true);
    assert_eq!(whole["partial"], false);
    assert_eq!(partial["accounting"], whole["accounting"]);
    assert_eq!(partial["collisions"], whole["collisions"]);
}

/// A balancer at 2,000 new connections/s (scripts/gen_load_capture.py) holds ~28,000 tuples in
/// TIME_WAIT: far more than a 1 MiB budget keeps. The evicted TIME_WAITs are counted, the
/// verdict says first that the result is a lower bound, it is never an all-clear, and one or
/// three threads give the same records.
#[test]
fn a_capture_too_big_for_the_memory_cap_gives_a_lower_bound_on_any_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("load.pcap");
    let made = Command::new("python3")
        .arg(repo_root().join("scripts/gen_load_capture.py"))
        .args(["--connections", "40000", "--rate", "2000"])
        .args(["-o", capture.to_str().unwrap()])
        .output()
        .expect("python3 runs the load generator");
    assert!(made.status.success(), "{made:?}");
    let (roomy, code) = analyze_json(&[&capture], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(roomy["complete"], true, "{}", roomy["cannot_show"]);
    let found = roomy["collisions"]["total"].as_u64().unwrap();
    let runs: Vec<(Value, Option<i32>, String, String)> = ["1", "3"]
        .iter()
        .map(|threads| {
            let (conns, cols) = (dir.path().join("c"), dir.path().join("k"));
            let (a, code) = analyze_json(
                &[&capture],
                &[
                    "--max-memory",
                    "1MiB",
                    "--threads",
                    threads,
                    "--connections",
                    conns.to_str().unwrap(),
                    "--collisions",
                    cols.to_str().unwrap(),
                ],
            );
            (
                a,
                code,
                std::fs::read_to_string(conns).unwrap(),
                std::fs::read_to_string(cols).unwrap(),
            )
        })
        .collect();
    let (tight, code, ..) = &runs[0];
    let evicted = tight["tracker"]["time_wait_evictions"].as_u64().unwrap();
    assert!(evicted > 10_000, "{}", tight["tracker"]);
    assert!(matches!(code, Some(1 | 3)), "never 0: {code:?}");
    assert_eq!(tight["complete"], false);
    let verdict = tight["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("A lower bound: "), "{verdict}");
    assert!(!verdict.contains("No TIME_WAIT collision:"), "{verdict}");
    assert!(tight["collisions"]["total"].as_u64().unwrap() < found);
    assert!(
        tight["cannot_show"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "time_wait_evicted" && l["blocks_all_clear"] == true)
    );
    assert_eq!(
        runs[0].2, runs[1].2,
        "connections differ between 1 and 3 threads"
    );
    assert_eq!(
        runs[0].3, runs[1].3,
        "collisions differ between 1 and 3 threads"
    );
    assert_eq!(
        runs[0].0, runs[1].0,
        "summaries differ between 1 and 3 threads"
    );
}

/// A capture whose first record is already corrupt yields no frame: that is never an
/// all-clear.
#[test]
fn a_capture_damaged_before_its_first_frame_is_not_an_all_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.pcap");
    let mut bytes = std::fs::read(fixture("capture/en10mb.pcap")).unwrap()[..24].to_vec();
    // A record header claiming 2 GiB of captured bytes.
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 60, 0, 0, 0]);
    bytes.extend_from_slice(&[0u8; 60]);
    std::fs::write(&path, bytes).unwrap();
    let (a, code) = analyze_json(&[&path], &[]);
    assert_eq!(code, Some(3));
    assert_eq!(a["complete"], false);
    let verdict = a["verdict"].as_str().unwrap();
    assert!(verdict.contains("not an all-clear"), "{verdict}");
    assert!(verdict.contains("No frame could be read"), "{verdict}");
}

/// Runs a command that makes test inputs; the tools are Debian packages (.ci/run installs
/// them).
fn make(tool: &str, args: &[&str]) {
    let out = oracle(tool, args);
    assert!(out.status.success(), "{tool} {args:?}: {out:?}");
}

/// A ~3.5 MB capture (4,000 connections of the synthetic balancer, scripts/gen_load_capture.py)
/// and the ring tcpdump cuts it into with `-C 1` (4 files), or `-C 1 -W 3` (wrapped: the first
/// file overwritten by the fourth).
fn ring_of_load(dir: &Path, files: Option<&str>) -> (PathBuf, PathBuf) {
    let source = dir.join("load.pcap");
    if !source.exists() {
        make(
            "python3",
            &[
                repo_root()
                    .join("scripts/gen_load_capture.py")
                    .to_str()
                    .unwrap(),
                "--connections",
                "4000",
                "-o",
                source.to_str().unwrap(),
            ],
        );
    }
    let ring = dir.join(format!("ring{}", files.unwrap_or("")));
    std::fs::create_dir_all(&ring).unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let out = ring.join("cap.pcap");
    let mut args = vec![
        "-r",
        source.to_str().unwrap(),
        "-w",
        out.to_str().unwrap(),
        "-C",
        "1",
        "-Z",
        user.trim(),
    ];
    if let Some(n) = files {
        args.extend(["-W", n]);
    }
    make("tcpdump", &args);
    (source, ring)
}

/// A tcpdump ring as a directory and as a tar.gz gives the frames of the capture it was cut
/// from (capinfos' count, tshark's SYNs); every frame reference names the member file, and the
/// frame is the one Wireshark shows under that number in that file.
#[test]
fn a_ring_as_a_directory_or_a_tar_gz_reads_as_the_original_capture() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, ring) = ring_of_load(tmp.path(), None);
    let tgz = tmp.path().join("ring.tgz");
    make(
        "tar",
        &[
            "-czf",
            tgz.to_str().unwrap(),
            "-C",
            ring.to_str().unwrap(),
            "cap.pcap",
            "cap.pcap1",
            "cap.pcap2",
            "cap.pcap3",
        ],
    );
    let (original, _) = stats(&source);
    assert_eq!(original["frames"], capinfos_packets(&source));
    for input in [&ring, &tgz] {
        let (s, stderr) = stats(input);
        assert_eq!(s["frames"], original["frames"], "{}", input.display());
        assert_eq!(s["syn"], original["syn"]);
        assert_eq!(s["first_ts_ns"], original["first_ts_ns"]);
        assert_eq!(s["last_ts_ns"], original["last_ts_ns"]);
        accounting_closes(&s);
        assert_eq!(s["files"].as_array().unwrap().len(), 4, "{stderr}");
        let set = &s["capture_set"];
        assert_eq!(set["gaps"].as_array().unwrap().len(), 0, "{set}");
        assert_eq!(set["overlaps"].as_array().unwrap().len(), 0, "{set}");
        assert_eq!(set["rings"][0]["wrapped"], false, "{set}");
    }
    let (s, _) = stats(&tgz);
    let names: Vec<&str> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["input"].as_str().unwrap())
        .collect();
    let t = tgz.to_str().unwrap();
    assert_eq!(
        names,
        [
            format!("{t}:cap.pcap"),
            format!("{t}:cap.pcap1"),
            format!("{t}:cap.pcap2"),
            format!("{t}:cap.pcap3"),
        ]
    );

    // Connections found in the archive point at (member, frame) as Wireshark numbers them.
    let conns = tmp.path().join("conns.jsonl");
    let out = twsleuth(&[
        "analyze",
        "--json",
        "--quiet",
        "--connections",
        conns.to_str().unwrap(),
        t,
    ]);
    let analysis = json_of(&out);
    let inputs: Vec<String> = analysis["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["input"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(inputs, names);
    // Per member file: frame number -> TCP ports, as tshark shows them.
    type Ports = (Option<u16>, Option<u16>);
    let mut frames_of_member: HashMap<String, HashMap<u64, Ports>> = HashMap::new();
    let text = std::fs::read_to_string(&conns).unwrap();
    let mut checked_in = std::collections::BTreeSet::new();
    for line in text.lines().step_by(97) {
        let c: Value = serde_json::from_str(line).unwrap();
        let (op, rp) = (
            c["orig_p"].as_u64().unwrap() as u16,
            c["resp_p"].as_u64().unwrap() as u16,
        );
        for key in ["first_frame", "last_frame"] {
            let member = &inputs[c[key]["file_index"].as_u64().unwrap() as usize];
            let file = member.rsplit(':').next().unwrap().to_string();
            checked_in.insert(file.clone());
            let by_number = frames_of_member.entry(file.clone()).or_insert_with(|| {
                tshark_frames(&ring.join(&file))
                    .into_iter()
                    .map(|f| (f.0, (f.4, f.5)))
                    .collect()
            });
            let number = c[key]["number"].as_u64().unwrap();
            let ports = by_number[&number];
            assert!(
                ports == (Some(op), Some(rp)) || ports == (Some(rp), Some(op)),
                "{key}: frame {number} of {file} is not of {op}<->{rp}: {ports:?}"
            );
        }
    }
    assert!(checked_in.len() >= 3, "{checked_in:?}");
}

#[test]
fn a_wrapped_ring_says_its_start_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, ring) = ring_of_load(tmp.path(), Some("3"));
    let (s, _) = stats(&ring);
    let r = &s["capture_set"]["rings"][0];
    assert_eq!(r["wrapped"], true, "{s}");
    assert!(r["oldest_file"].as_str().unwrap().ends_with("/cap.pcap1"));
    assert!(r["newest_file"].as_str().unwrap().ends_with("/cap.pcap0"));
    assert_eq!(r["lost_before_ts"], s["first_ts"]);
    let out = twsleuth(&["stats", ring.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WRAPPED") && text.contains("the capture's start is missing"),
        "{text}"
    );
}

/// Directories and archives list what they skip; an empty capture is read (0 frames).
#[test]
fn files_that_are_not_captures_are_skipped_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(fixture("capture/en10mb.pcap.zst"), dir.join("core0")).unwrap();
    std::fs::copy(fixture("capture/empty.pcap"), dir.join("core1.pcap")).unwrap();
    std::fs::write(dir.join("notes.txt"), "Hello from the balancer\n").unwrap();
    std::fs::copy(
        fixture("capture/foreign/solaris.snoop"),
        dir.join("old.snoop"),
    )
    .unwrap();
    let out = twsleuth(&["stats", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for says in [
        "notes.txt: not a capture: it is text, starting with \"Hello from the balancer\"",
        "old.snoop: a Solaris snoop capture, a format twsleuth does not read: convert it with `editcap -F pcapng old.snoop old.pcapng`",
    ] {
        assert!(text.contains(says), "{text}");
        assert!(stderr.contains(says), "{stderr}");
    }
    let (s, _) = stats(&dir);
    assert_eq!(s["frames"], 613);
    assert_eq!(s["files"].as_array().unwrap().len(), 2);
    assert_eq!(s["skipped"].as_array().unwrap().len(), 2);
}

/// More files than the open-file limit (64): a ring of 205 files reads whole, opening each
/// when its frames come due; 100 captures that all overlap in time cannot all be open under a
/// hard limit of 64, and those that could not are reported with the limit to raise; under a
/// soft limit of 64 and a hard one of 4096, the soft one is raised and all are read.
#[test]
fn more_files_than_the_open_file_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let split = tmp.path().join("split");
    std::fs::create_dir(&split).unwrap();
    let source = fixture("capture/en10mb.pcap");
    make(
        "editcap",
        &[
            "-c",
            "3",
            source.to_str().unwrap(),
            split.join("part.pcap").to_str().unwrap(),
        ],
    );
    // soft:hard open-file limits
    let limited_to = |nofile: &str, args: &[&str]| {
        Command::new("prlimit")
            .arg(format!("--nofile={nofile}"))
            .args(["--", env!("CARGO_BIN_EXE_twsleuth")])
            .args(args)
            .output()
            .expect("prlimit (util-linux) runs")
    };
    let limited = |args: &[&str]| limited_to("64:64", args);
    let out = limited(&["stats", "--json", split.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let s = json_of(&out);
    assert_eq!(s["files"].as_array().unwrap().len(), 205);
    assert_eq!(s["frames"], 613);
    assert_eq!(s["damaged_inputs"], 0);

    let cores = tmp.path().join("cores");
    std::fs::create_dir(&cores).unwrap();
    for core in 0..100 {
        std::fs::copy(
            fixture("capture/ipv4.pcap"),
            cores.join(format!("core{core}.pcap")),
        )
        .unwrap();
    }
    let out = limited(&["stats", "--json", cores.to_str().unwrap()]);
    let s = json_of(&out);
    let damaged = s["damaged_inputs"].as_u64().unwrap();
    assert!(damaged > 0 && damaged < 100, "{s}");
    assert_eq!(s["frames"].as_u64().unwrap(), (100 - damaged) * 275);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("open-file limit (`ulimit -n`)") && stderr.contains("frames are missing"),
        "{stderr}"
    );
    // With room under the hard limit, the soft one is raised and every capture is read.
    let out = limited_to("64:4096", &["stats", "--json", cores.to_str().unwrap()]);
    let s = json_of(&out);
    assert_eq!(s["damaged_inputs"], 0, "{s}");
    assert_eq!(s["frames"], 100 * 275);
}

/// Comments of pcapng files are shown (escaped) by stats.
#[test]
fn stats_shows_comments() {
    let path = fixture("capture/comments.pcapng");
    let (s, _) = stats(&path);
    assert_eq!(s["files"][0]["packet_comments"], 3);
    assert_eq!(
        s["files"][0]["section_comments"][0],
        "capture comment: made by make_edge_fixtures.py with editcap -a"
    );
}

/// The report's evidence on a set (the HAProxy lab capture cut into 5 files by editcap, in a
/// tar.gz) names the member file of each collision, its Wireshark filter covers frames of that
/// file only, and a previous connection that ended in the file before says so.
#[test]
fn report_evidence_names_the_member_and_filters_within_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = fixture("lab/haproxy/lb-backend.pcap");
    make(
        "editcap",
        &[
            "-c",
            // The worst collision (frame 5531) in the third part, its previous connection
            // (frames 5337-5340) in the second.
            "2700",
            lab.to_str().unwrap(),
            tmp.path().join("part.pcap").to_str().unwrap(),
        ],
    );
    let mut parts: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    parts.sort();
    let tgz = tmp.path().join("lab.tgz");
    let mut args = vec![
        "-czf",
        tgz.to_str().unwrap(),
        "-C",
        tmp.path().to_str().unwrap(),
    ];
    args.extend(parts.iter().map(String::as_str));
    make("tar", &args);
    let out_dir = tmp.path().join("report");
    let out = twsleuth(&[
        "report",
        "--quiet",
        tgz.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "collisions found: {out:?}");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let t = tgz.to_str().unwrap();
    assert!(md.contains(&format!("File `{t}:part_00000_")), "{md}");
    let mut ranges = 0;
    for filter in md.split("frame.number>=").skip(1) {
        let first: u64 = filter.split(' ').next().unwrap().parse().unwrap();
        let last: u64 = filter
            .split("frame.number<=")
            .nth(1)
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(first <= last, "empty range {first}..{last}");
        ranges += 1;
    }
    assert!(ranges >= 2, "{md}");
    // The worst collision's previous connection ended in the file before: its ladder rows
    // name that member.
    assert!(
        md.lines()
            .any(|l| l.contains("previous connection") && l.contains(":part_00001_")),
        "{md}"
    );
}

/// TCP on a link type twsleuth does not decode is never an all-clear: the lab's accepted
/// scenario relabelled as link type 147 (USER0) holds 60 collisions twsleuth cannot reach.
#[test]
fn tcp_twsleuth_cannot_reach_is_never_an_all_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user0.pcap");
    let mut bytes = std::fs::read(fixture("lab/accepted/server.pcap")).unwrap();
    // The link type, in the pcap header's last field (little-endian here).
    bytes[20..24].copy_from_slice(&147u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let (a, code) = analyze_json(&[&path], &[]);
    assert_eq!(code, Some(3), "{}", a["verdict"]);
    assert_eq!(a["complete"], false);
    let limit = a["cannot_show"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "link_type_not_decoded")
        .expect("the undecoded link type is named");
    assert_eq!(limit["blocks_all_clear"], true);
    assert_eq!(limit["count"], a["accounting"]["frames"]);
    assert!(
        limit["text"].as_str().unwrap().contains("on link type 147"),
        "{limit}"
    );
    assert!(a["verdict"].as_str().unwrap().contains("not an all-clear"));
}

/// `watch --report DIR` on a pipe keeps the bytes it received in DIR/capture.pcap and writes
/// the report of them from its one reading: the same collisions as `report` on the file, and
/// the same packet ladders, kept while watching; the report names the kept file and its
/// SHA-256.
#[test]
fn watch_with_report_keeps_the_piped_capture_and_reports_on_it() {
    use std::io::Write as _;
    use std::process::Stdio;
    let input = fixture("lab/rejected/server.pcap");
    let bytes = std::fs::read(&input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("watched");
    let watch = |report_dir: &Path| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_twsleuth"))
            .args(["watch", "--every", "20ms", "--report"])
            .arg(report_dir)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for piece in bytes.chunks(65_521) {
            // A refused directory ends the run before it reads its input.
            if stdin.write_all(piece).is_err() {
                break;
            }
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    // Twice into the same directory: the kept capture is the report's own, not a foreign file.
    for _ in 0..2 {
        let out = watch(&watched);
        assert_eq!(
            out.status.code(),
            Some(1),
            "the rejected scenario's 10 collisions: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains("Report written to"), "{stdout}");
        assert_eq!(std::fs::read(watched.join("capture.pcap")).unwrap(), bytes);
        assert!(!watched.join("capture.receiving").exists());
        let manifest = std::fs::read_to_string(watched.join(".twsleuth-report")).unwrap();
        assert!(manifest.lines().any(|l| l == "capture.pcap"), "{manifest}");
    }

    let direct = dir.path().join("direct");
    let reported = twsleuth(&[
        "report",
        input.to_str().unwrap(),
        "-o",
        direct.to_str().unwrap(),
    ]);
    assert_eq!(reported.status.code(), Some(1));
    let collisions = |report: &std::path::Path| -> serde_json::Value {
        let text = std::fs::read_to_string(report.join("data/summary.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["collisions"].clone()
    };
    assert_eq!(collisions(&watched)["total"], 10);
    assert_eq!(collisions(&watched), collisions(&direct));
    let input = |report: &std::path::Path| -> serde_json::Value {
        let text = std::fs::read_to_string(report.join("data/summary.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["inputs"][0].clone()
    };
    assert_eq!(
        input(&watched)["input"].as_str(),
        watched.join("capture.pcap").to_str()
    );
    assert_eq!(input(&watched)["sha256"], input(&direct)["sha256"]);
    assert_eq!(input(&watched)["frames"], input(&direct)["frames"]);
    // The ladders kept while watching are the file's.
    let ladders = report_ladders(&watched);
    assert!(ladders.len() >= 2, "{ladders:?}");
    assert!(
        ladders
            .iter()
            .all(|ladder| ladder.contains("SYN on a tuple the server holds")),
        "{ladders:?}"
    );
    assert_eq!(ladders, report_ladders(&direct));

    // A directory holding someone else's file is refused before watching starts.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let out = watch(&foreign);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert!(!foreign.join("capture.receiving").exists());
    assert!(!foreign.join("capture.pcap").exists());
}

/// `watch` on a capture that arrives through a pipe in pieces, with pauses longer than its
/// refresh (so that it follows the capture in several stretches), ends with the same summary
/// as `analyze` of the same bytes, and printed the first collision as an event on the way.
#[test]
fn watch_on_a_pipe_in_chunks_ends_with_the_totals_of_analyze() {
    use std::io::Write as _;
    use std::process::Stdio;
    let bytes = std::fs::read(fixture("lab/rejected/server.pcap")).unwrap();
    let run = |command: &str, extra: &[&str], pause: std::time::Duration| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_twsleuth"))
            .arg(command)
            .args(extra)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Pieces that cut records in the middle.
        for piece in bytes.chunks(7_919) {
            stdin.write_all(piece).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(pause);
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        (String::from_utf8(out.stdout).unwrap(), out.status.code())
    };
    let no_pause = std::time::Duration::ZERO;
    let (analyzed, analyze_code) = run("analyze", &["--quiet"], no_pause);
    let (watched, watch_code) = run(
        "watch",
        &["--every", "20ms"],
        std::time::Duration::from_millis(30),
    );
    assert_eq!(watch_code, analyze_code);
    assert_eq!(watch_code, Some(1), "the rejected scenario's 10 collisions");
    let summary = &watched[watched.find("Verdict:").expect("a summary at the end")..];
    assert_eq!(summary, analyzed);
    let before = &watched[..watched.find("Verdict:").unwrap()];
    // Several looks at the capture as it came, and the first rejection announced.
    assert!(before.matches(" connections ").count() >= 3, "{before}");
    assert!(
        before.contains("event: first collision rejected recovered: 10.245.1.1:22000"),
        "{before}"
    );
}

/// F5 BIG-IP trailers (fixtures/capture/f5, made from the paws lab capture) change nothing in
/// the findings: the same collisions, outcomes and verdict as the plain capture; stats counts
/// the trailers by virtual server and RST cause, the fileinfo frame as capture information,
/// and shows none of the trailer's bytes.
#[test]
fn f5_trailers_give_the_collisions_of_the_plain_capture() {
    let plain_path = fixture("lab/paws/server.pcap");
    let (plain, _) = analyze_json(&[&plain_path], &[]);
    assert!(plain["collisions"]["total"].as_u64().unwrap() > 0);
    for name in [
        "legacy-low.pcap",
        "legacy-medium.pcap",
        "legacy-high.pcap",
        "new-low.pcap",
        "new-medium.pcap",
        "new-high.pcap",
        "fcs.pcap",
    ] {
        let path = fixture(&format!("capture/f5/{name}"));
        let (ours, _) = analyze_json(&[&path], &[]);
        for key in [
            "verdict",
            "collisions",
            "connections",
            "syn",
            "reused_tuples",
        ] {
            assert_eq!(ours[key], plain[key], "{name}: {key}");
        }
        let (s, _) = stats(&path);
        accounting_closes_with_capture_info(&s);
        assert_eq!(s["tcp_segments"], tshark_count(&path, "tcp"), "{name}");
        assert_eq!(s["non_ip"], tshark_count(&path, "arp"), "{name}: ARP only");
    }
    let (s, _) = stats(&fixture("capture/f5/new-high.pcap"));
    assert_eq!(s["capture_info"], 1);
    let f5 = &s["f5"];
    assert_eq!(
        f5["frames"],
        s["accounting"]["bytes_after_ip"]["f5_trailer"]
    );
    assert_eq!(f5["high_noise"], f5["frames"]);
    assert_eq!(f5["file_info"][0]["platform"], "Z100");
    let rsts: u64 = f5["virtual_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vs| vs["rst"].as_u64().unwrap())
        .sum();
    let causes: u64 = f5["rst_causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["frames"].as_u64().unwrap())
        .sum();
    assert!(rsts > 0 && causes >= rsts, "{f5}");
    // The TLS provider record's bytes (0x40.. '@ABC…') are never read or shown.
    let text = String::from_utf8(
        twsleuth(&[
            "stats",
            fixture("capture/f5/new-high.pcap").to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
    assert!(text.contains("F5 trailers:") && text.contains("virtual server /Common/vs_api"));
    assert!(!text.contains("@ABCDEF") && !s.to_string().contains("@ABCDEF"));
    // analyze's frame count closes too: the fileinfo frame is named, not lost.
    let analyzed = String::from_utf8(
        twsleuth(&[
            "analyze",
            fixture("capture/f5/new-high.pcap").to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
    let frames_line = analyzed.lines().find(|l| l.starts_with("Frames:")).unwrap();
    assert!(
        frames_line.contains(&format!("Frames: {} (", s["frames"]))
            && frames_line.contains(", capture information 1)"),
        "{frames_line}"
    );
}

fn accounting_closes_with_capture_info(s: &Value) {
    let parts = [
        "tcp_segments",
        "other_ip",
        "non_ip",
        "malformed",
        "truncated",
        "fragments",
        "capture_info",
    ];
    let sum: u64 = parts.iter().map(|k| s[k].as_u64().unwrap()).sum();
    assert_eq!(
        sum,
        s["frames"].as_u64().unwrap(),
        "accounting does not close: {s}"
    );
    assert_eq!(s["malformed"], 0);
}

/// A SPAN of both legs of a bridge-mode balancer (scripts/make_bridge_fixture.py: every frame
/// of the HAProxy lab's balancer capture twice, on VLAN 10 and VLAN 20, 2 µs apart): two
/// views of each connection, joined into one. The findings are the kernel's (800 connections,
/// 700 collisions, all accepted), no copy is taken for a duplicate or a retransmission, each
/// connection's packets are those of the capture alone, and the exports name both VLANs.
#[test]
fn both_legs_of_a_bridge_are_two_views_of_one_connection() {
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lab/haproxy/truth.json")).unwrap())
            .unwrap();
    let expected = &truth["expected"];
    let alone_path = fixture("lab/haproxy/lb-backend.pcap");
    let bridge = fixture("capture/bridge/haproxy-vlan10-20.pcap.gz");
    let tmp = tempfile::tempdir().unwrap();
    let export = |path: &Path, name: &str, extra: &[&str]| {
        let (conns, cols) = (
            tmp.path().join(format!("{name}-c.jsonl")),
            tmp.path().join(format!("{name}-k.jsonl")),
        );
        let mut args = vec![
            "--connections",
            conns.to_str().unwrap(),
            "--collisions",
            cols.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (a, _) = analyze_json(&[path], &args);
        (a, jsonl(&conns), jsonl(&cols))
    };
    let (alone, alone_conns, alone_cols) = export(&alone_path, "alone", &[]);
    let (a, conns, cols) = export(&bridge, "bridge", &[]);
    assert_eq!(a["connections"], expected["connections"]);
    assert_eq!(a["collisions"]["total"], expected["collisions"]);
    assert_eq!(a["collisions"]["accepted"], expected["collisions"]);
    assert_eq!(a["client_side_reuse"], expected["client_side_reuse"]);
    assert_eq!(a["collisions"], alone["collisions"]);
    for figure in ["syn", "reused_tuples", "time_wait_holders"] {
        assert_eq!(a[figure], alone[figure], "{figure}");
    }
    assert_eq!(a["tracker"]["duplicate_segments"], 0);
    assert_eq!(a["tracker"]["joined_views"], 800);
    assert_eq!(
        a["tracker"]["segments"],
        2 * alone["tracker"]["segments"].as_u64().unwrap()
    );
    // Per connection: the VLAN 10 view's packets and retransmissions, those of the capture
    // alone; the VLAN 20 view is evidence with the same counts.
    assert_eq!(packet_counts(&conns), packet_counts(&alone_conns));
    for c in &conns {
        assert_eq!(c["view"]["vantage"]["outer_vlan"], 10, "{c}");
        let others = c["other_views"].as_array().unwrap();
        assert_eq!(others.len(), 1, "{c}");
        assert_eq!(others[0]["view"]["vantage"]["outer_vlan"], 20, "{c}");
        assert_eq!(others[0]["orig_pkts"], c["orig_pkts"], "{c}");
        assert_eq!(others[0]["resp_pkts"], c["resp_pkts"], "{c}");
    }
    // Each collision once, the same SYNs as the capture alone, with its VLAN 20 view.
    let syns = |records: &[Value]| -> Vec<(u64, u64, String)> {
        let mut rows: Vec<_> = records
            .iter()
            .map(|c| {
                (
                    c["orig_p"].as_u64().unwrap(),
                    c["syn_seq"].as_u64().unwrap(),
                    c["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        rows.sort_unstable();
        rows
    };
    assert_eq!(syns(&cols), syns(&alone_cols));
    for c in &cols {
        assert_eq!(c["view"]["vantage"]["outer_vlan"], 10, "{c}");
        assert_eq!(
            c["other_views"][0]["view"]["vantage"]["outer_vlan"], 20,
            "{c}"
        );
        assert_eq!(c["other_views"][0]["outcome"], c["outcome"], "{c}");
    }
    // The same on any number of threads.
    let (_, conns_3, cols_3) = export(&bridge, "bridge3", &["--threads", "3"]);
    assert_eq!((&conns_3, &cols_3), (&conns, &cols));
    // Without the VLAN in the key, the second leg's frames are duplicates of the first's.
    let (merged, _, _) = export(&bridge, "none", &["--split-by", "none"]);
    assert_eq!(merged["collisions"], alone["collisions"]);
    assert_eq!(merged["connections"], alone["connections"]);
    assert!(merged["tracker"]["duplicate_segments"].as_u64().unwrap() > 0);
}

/// The HAProxy lab's capture at the balancer and the one at the server, the server's clock
/// set 2.5 s ahead (editcap -t 2.5): two capture points of the same connections. The offset
/// estimate finds the shift (within the veth's few microseconds of delay), each collision is
/// counted once as the kernel saw it, each connection's packets are the balancer's capture's
/// alone (the server's copy of a SYN is no retransmission), and the server's view is there as
/// evidence. Unshifted, the offset is the veth's microseconds; a capture of other traffic
/// shares nothing and is analysed side by side.
#[test]
fn a_balancers_and_a_servers_capture_are_joined_with_their_clock_offset() {
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lab/haproxy/truth.json")).unwrap())
            .unwrap();
    let expected = &truth["expected"];
    let lb = fixture("lab/haproxy/lb-backend.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let shifted = tmp.path().join("server-ahead.pcap");
    make(
        "editcap",
        &[
            "-t",
            "2.5",
            fixture("lab/haproxy/server.pcap").to_str().unwrap(),
            shifted.to_str().unwrap(),
        ],
    );
    let conns_path = tmp.path().join("c.jsonl");
    let cols_path = tmp.path().join("k.jsonl");
    let (a, code) = analyze_json(
        &[&lb, &shifted],
        &[
            "--connections",
            conns_path.to_str().unwrap(),
            "--collisions",
            cols_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1));
    assert_eq!(a["connections"], expected["connections"]);
    assert_eq!(a["collisions"]["total"], expected["collisions"]);
    assert_eq!(a["collisions"]["accepted"], expected["collisions"]);
    assert_eq!(a["syn"], expected["connections"]);
    assert_eq!(a["tracker"]["duplicate_segments"], 0);
    assert_eq!(a["tracker"]["joined_views"], 800);
    assert_eq!(a["capture_point_inputs"]["of_input"], json!([0, 1]));
    let clock = &a["capture_points"][0];
    assert_eq!(clock["point"], 1);
    assert_eq!(clock["matched_handshakes"], 800);
    let offset_s = clock["offset_ns"].as_f64().unwrap() / 1e9;
    assert!((offset_s - 2.5).abs() < 50e-6, "offset {offset_s} s");
    assert!(clock["spread_ns"].as_i64().unwrap() < 50_000, "{clock}");
    assert!(clock["drift_ppm"].as_f64().unwrap().abs() < 10.0, "{clock}");
    let (conns, cols) = (jsonl(&conns_path), jsonl(&cols_path));
    // Per connection, the balancer's packets, as in its capture alone.
    let alone_path = tmp.path().join("alone.jsonl");
    analyze_json(&[&lb], &["--connections", alone_path.to_str().unwrap()]);
    assert_eq!(packet_counts(&conns), packet_counts(&jsonl(&alone_path)));
    for c in &cols {
        assert_eq!(c["first_syn_frame"]["file_index"], 0, "{c}");
        let server = &c["other_views"][0];
        assert_eq!(server["view"]["point"], 1, "{c}");
        assert_eq!(server["first_syn_frame"]["file_index"], 1, "{c}");
        assert_eq!(server["outcome"], c["outcome"], "{c}");
        let later_s = (server["ts_ns"].as_i64().unwrap() - c["ts_ns"].as_i64().unwrap()) as f64;
        assert!((later_s / 1e9 - 2.5).abs() < 1e-3, "{c}");
    }
    // Unshifted: the veth's delay, microseconds.
    let (same_clock, _) = analyze_json(&[&lb, &fixture("lab/haproxy/server.pcap")], &[]);
    assert_eq!(same_clock["collisions"]["total"], expected["collisions"]);
    let offset_ns = same_clock["capture_points"][0]["offset_ns"]
        .as_i64()
        .unwrap();
    assert!(offset_ns.abs() < 50_000, "{offset_ns}");
    // Other traffic: nothing shared, nothing joined, side by side.
    let (apart, _) = analyze_json(&[&lb, &fixture("lab/rejected/server.pcap")], &[]);
    assert_eq!(apart["capture_point_inputs"]["side_by_side"], json!([0, 1]));
    assert!(apart.get("capture_points").is_none());
    assert_eq!(apart["tracker"].get("joined_views"), None);
    assert_eq!(apart["collisions"]["total"], 700 + 10);
}

/// Rates come from the real span, not calendar seconds: the rejected scenario's 15
/// connections began within 0.55 s (the report used to say "peak 12, mean 15.0": a mean over
/// a span rounded up to 1 s, and a peak below it), the HAProxy scenario's 800 within 32 s.
/// Checked against the first SYN of each connection as tshark lists them.
#[test]
fn rates_come_from_the_real_span_and_a_sliding_window() {
    for (scenario, long) in [
        ("rejected/server.pcap", false),
        ("haproxy/lb-backend.pcap", true),
    ] {
        let path = fixture(&format!("lab/{scenario}"));
        // First SYN of each connection: SYNs without ACK, one per (source port, ISN).
        let out = oracle(
            "tshark",
            &[
                "-r",
                path.to_str().unwrap(),
                "-Y",
                "tcp.flags.syn == 1 && tcp.flags.ack == 0",
                "-T",
                "fields",
                "-e",
                "frame.time_epoch",
                "-e",
                "tcp.srcport",
                "-e",
                "tcp.seq_raw",
            ],
        );
        let mut first: BTreeMap<(String, String), f64> = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let t: f64 = fields[0].parse().unwrap();
            let start = first
                .entry((fields[1].to_string(), fields[2].to_string()))
                .or_insert(t);
            *start = start.min(t);
        }
        let mut starts: Vec<f64> = first.into_values().collect();
        starts.sort_by(f64::total_cmp);
        let n = starts.len();
        let span = starts[n - 1] - starts[0];
        let window = if long { 1.0 } else { span / 10.0 };
        // Most starts in a window [t, t + window) beginning at a start.
        let peak = (0..n)
            .map(|i| {
                starts[i..]
                    .iter()
                    .take_while(|t| **t - starts[i] < window)
                    .count()
            })
            .max()
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("report");
        let reported = twsleuth(&[
            "report",
            path.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ]);
        assert!(
            matches!(reported.status.code(), Some(0 | 1)),
            "{reported:?}"
        );
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(out_dir.join("data/summary.json")).unwrap(),
        )
        .unwrap();
        let rate = &summary["rates"]["all"];
        assert_eq!(rate["connections"], n as u64, "{scenario}");
        let mean = rate["mean_per_s"].as_f64().unwrap();
        assert!(
            (mean - n as f64 / span).abs() / mean < 1e-3,
            "{scenario}: {mean} vs {n}/{span}"
        );
        assert!(
            (rate["window_ns"].as_f64().unwrap() / 1e9 - window).abs() < 1e-5,
            "{scenario}: {rate}"
        );
        // tshark's times are µs: a start within a µs of a window's edge may fall either side.
        let ours = rate["peak_in_window"].as_u64().unwrap() as i64;
        assert!(
            (ours - peak as i64).abs() <= 1,
            "{scenario}: {ours} vs {peak}"
        );
        let peak_per_s = rate["peak_per_s"].as_f64().unwrap();
        assert!(
            peak_per_s >= mean * 0.95,
            "{scenario}: peak {peak_per_s} below mean {mean}"
        );
        // The capacity model sizes the fix from the same peak.
        let model = &summary["capacity_model"][0];
        assert_eq!(model["peak_per_s"], rate["peak_per_s"], "{scenario}");
        let text = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
        let row = text
            .lines()
            .find(|l| l.starts_with("| New connections per second"))
            .unwrap();
        assert!(row.contains("busiest sliding"), "{row}");
        assert_eq!(row.contains("a tenth of the span"), !long, "{row}");
    }
}

/// A balancer's and a server's capture of the same connections (the HAProxy lab, both taken
/// on one clock): each ladder row names its input, and the server's copy of a SYN is the same
/// SYN at the other capture point, never a retransmission (the scenario has none: every
/// collision was accepted at its first SYN, per the kernel's truth).
#[test]
fn ladders_of_two_capture_points_name_the_input_and_no_false_retransmission() {
    let lb = fixture("lab/haproxy/lb-backend.pcap");
    let server = fixture("lab/haproxy/server.pcap");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let out = twsleuth(&[
        "report",
        lb.to_str().unwrap(),
        server.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("client → server") || l.contains("client ← server"))
        .collect();
    assert!(!rows.is_empty(), "{text}");
    assert!(text.contains("  time (ms)  input"), "{text}");
    for row in &rows {
        assert!(
            row.contains("lb-backend.pcap") || row.contains("server.pcap"),
            "{row}"
        );
        assert!(!row.contains("retransmitted"), "{row}");
    }
    assert!(
        rows.iter()
            .any(|r| r.contains("server.pcap")
                && r.contains("the same SYN, at the other capture point")),
        "{text}"
    );
    // The method section says how the inputs were put together, as analyze does.
    assert!(text.contains("How the inputs were put together:"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("- Capture point 1: ")
                && l.contains("each connection counted once")),
        "{text}"
    );
    // Two captures of unrelated traffic: analysed side by side, and the report says so.
    let apart_dir = dir.path().join("apart");
    let out = twsleuth(&[
        "report",
        fixture("lab/rejected/server.pcap").to_str().unwrap(),
        fixture("lab/clean/server.pcap").to_str().unwrap(),
        "-o",
        apart_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let apart = std::fs::read_to_string(apart_dir.join("report.md")).unwrap();
    assert!(
        apart.lines().any(|l| l.starts_with("- Side by side: ")
            && l.contains("no connection with the other inputs")),
        "{apart}"
    );
}

/// The timeline lists changes, not busy seconds: the rejected scenario's refusals are one
/// episode holding the kernel's 10 rejections; the synthetic balancer's steady collisions are
/// no list of "bursts", and its refusals are one episode as long as the capture's traffic.
#[test]
fn the_timeline_lists_episodes_of_refusals_not_busy_seconds() {
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lab/rejected/truth.json")).unwrap())
            .unwrap();
    let rejected = truth["expected"]["collisions"].as_u64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let timeline_of = |capture: &str| -> Vec<String> {
        let out_dir = dir.path().join(capture.replace('/', "-"));
        let out = twsleuth(&[
            "report",
            fixture(capture).to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
        md.split("## Timeline")
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("| 20"))
            .map(str::to_string)
            .collect()
    };
    let events = timeline_of("lab/rejected/server.pcap");
    assert!(events.iter().all(|e| !e.contains("Burst")), "{events:?}");
    let begins: Vec<&String> = events
        .iter()
        .filter(|e| e.contains("Refusals begin"))
        .collect();
    assert_eq!(begins.len(), 1, "{events:?}");
    assert!(
        begins[0].contains(&format!("{rejected} refused SYNs")),
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| e.contains("Refusals end")).count(),
        1
    );

    let events = timeline_of("synthetic/lb-cycle.pcap.gz");
    assert!(events.iter().all(|e| !e.contains("Burst")), "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("Refusals begin"))
            .count(),
        1,
        "{events:?}"
    );
    // The generator's outcomes each get their first occurrence named.
    for outcome in ["rejected recovered", "unanswered"] {
        assert!(
            events
                .iter()
                .any(|e| e.contains(&format!("First {outcome} collision"))),
            "{outcome}: {events:?}"
        );
    }
}

/// Every chart of the example reports renders (librsvg, the renderer of GNOME and of many
/// static-site tools, reads the SVG and draws it at its declared 900×450 size), and says in
/// its own text what it shows.
#[test]
fn every_example_chart_renders() {
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reports");
    let tmp = tempfile::tempdir().unwrap();
    let mut rendered = 0;
    for report in std::fs::read_dir(&reports).unwrap() {
        let charts = report.unwrap().path().join("charts");
        let Ok(entries) = std::fs::read_dir(&charts) else {
            continue;
        };
        for chart in entries {
            let svg = chart.unwrap().path();
            let png = tmp.path().join(format!("{rendered}.png"));
            let out = oracle(
                "rsvg-convert",
                &[svg.to_str().unwrap(), "-o", png.to_str().unwrap()],
            );
            assert!(out.status.success(), "{}: {out:?}", svg.display());
            let bytes = std::fs::read(&png).unwrap();
            // PNG signature, then the IHDR chunk: width and height, big-endian.
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", svg.display());
            let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
            assert_eq!((size(16), size(20)), (900, 450), "{}", svg.display());
            let text = std::fs::read_to_string(&svg).unwrap();
            assert!(text.contains("<title>"), "{}", svg.display());
            rendered += 1;
        }
    }
    // Four reports, each with a port-reuse chart per source and four others.
    assert!(rendered >= 20, "{rendered} charts");
}

/// The Wireshark filters select what they say: the filter per outcome, in tshark, selects the
/// first SYN of every collision of that outcome and nothing else; each row's filter in
/// collisions.csv selects that collision's SYN and only frames of its tuple.
#[test]
fn wireshark_filters_select_every_collision_and_nothing_else() {
    let path = fixture("lab/paws/server.pcap");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let out = twsleuth(&[
        "report",
        path.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let tshark_frames_of = |filter: &str| -> Vec<String> {
        let out = oracle(
            "tshark",
            &[
                "-r",
                path.to_str().unwrap(),
                "-Y",
                filter,
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "tcp.flags.syn",
                "-e",
                "tcp.flags.ack",
            ],
        );
        assert!(out.status.success(), "{filter}: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("data/summary.json")).unwrap())
            .unwrap();
    let mut outcomes = 0;
    for line in md
        .lines()
        .filter(|l| l.contains("their first SYNs: `frame.number in {"))
    {
        // "- 53 accepted collisions in `…`, their first SYNs: `frame.number in {…}`"
        let n: u64 = line
            .trim_start_matches("- ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let filter = line.split('`').nth(3).unwrap();
        let frames = tshark_frames_of(filter);
        assert_eq!(frames.len() as u64, n, "{line}");
        assert!(
            frames.iter().all(|f| f.ends_with("\t1\t0")),
            "SYNs only: {frames:?}"
        );
        outcomes += n;
    }
    assert_eq!(
        outcomes,
        summary["collisions"]["total"].as_u64().unwrap(),
        "{md}"
    );

    for row in collisions_csv(&out_dir).iter().take(8) {
        let filter = &row["wireshark_filter"];
        let frames = tshark_frames_of(filter);
        assert!(
            frames
                .iter()
                .any(|f| f.starts_with(&format!("{}\t", row["first_syn_frame"]))),
            "{filter}: {frames:?}"
        );
        assert!(frames.len() <= 4, "{filter}: {frames:?}");
    }
}

/// A proxy's two legs without a vendor trailer, paired by timing and order, against HAProxy's
/// own log of which backend connection served each end user's connection (the lab's haproxy
/// scenarios: `truth.json` `legs`, with whether each backend connection collided per the
/// kernel's record).
#[test]
fn proxy_legs_pair_as_haproxys_log_says() {
    for scenario in ["haproxy", "haproxy-busy"] {
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("lab/{scenario}/truth.json"))).unwrap(),
        )
        .unwrap();
        let logged = truth["legs"]["pairing"].as_array().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let pairs_path = tmp.path().join("legs.jsonl");
        let frontend = fixture(&format!("lab/{scenario}/lb-frontend.pcap"));
        let backend = fixture(&format!("lab/{scenario}/lb-backend.pcap"));
        let (a, code) = analyze_json(
            &[&frontend, &backend],
            &["--legs", pairs_path.to_str().unwrap()],
        );
        assert_eq!(code, Some(1));
        let ours: Vec<Value> = std::fs::read_to_string(&pairs_path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let endpoint = |leg: &Value| {
            format!(
                "{}:{}",
                leg["orig"]["ip"].as_str().unwrap(),
                leg["orig"]["port"]
            )
        };
        // A pair is HAProxy's when a log line names both connections (the client's ports come
        // round, so the backend SYN's time must match the logged connection's within 50 ms).
        let is_logged = |p: &Value| {
            let syn_s = p["backend_syn_ts_ns"].as_i64().unwrap() as f64 / 1e9;
            logged.iter().any(|l| {
                l["frontend"] == endpoint(&p["frontend"])
                    && l["backend"] == endpoint(&p["backend"])
                    && (l["backend_start"].as_f64().unwrap() - syn_s).abs() < 0.05
            })
        };
        let correct = ours.iter().filter(|p| is_logged(p)).count();
        let precision = correct as f64 / ours.len() as f64;
        let recall = correct as f64 / logged.len() as f64;
        let confidence = a["legs"]["confidence"].as_f64().unwrap();
        eprintln!(
            "{scenario}: {correct} of {} pairs right, {} logged: precision {precision}, recall {recall}, confidence {confidence}",
            ours.len(),
            logged.len()
        );
        let mut accepts: Vec<f64> = logged
            .iter()
            .map(|l| l["accept"].as_f64().unwrap())
            .collect();
        accepts.sort_by(f64::total_cmp);
        let closest = accepts
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::MAX, f64::min);
        let slowest = logged
            .iter()
            .map(|l| l["backend_start"].as_f64().unwrap() - l["accept"].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        if scenario == "haproxy" {
            // Every backend connect() came within 12 ms of its accept (the kernel's time
            // against the log's) while requests came at least 25 ms apart: one request at a
            // time waited for each backend SYN, so every pair must be right and sure.
            assert!(
                slowest < closest,
                "{slowest} s to connect, requests {closest} s apart"
            );
            assert_eq!((precision, recall, confidence), (1.0, 1.0, 1.0));
        } else {
            // Four end users at once: requests overlap at HAProxy (the log's accepts come 0 s
            // apart at the closest), so timing is sometimes ambiguous. The confidence must
            // say so honestly: every pair it is sure of is HAProxy's, and no more pairs are
            // wrong than the confidence allows (HAProxy serves in order, so fewer are).
            assert!(slowest > closest);
            assert!(confidence < 1.0);
            for pair in ours.iter().filter(|p| p["confidence"] == 1.0) {
                assert!(is_logged(pair), "sure but not in HAProxy's log: {pair}");
            }
            assert!(precision >= confidence && recall >= confidence);
        }
        let legs = &a["legs"];
        assert_eq!(legs["pairs"], logged.len());
        // Requests slowed: those whose backend connection collided, per HAProxy's log joined
        // with the kernel's record.
        assert_eq!(
            legs["requests_slowed"],
            truth["legs"]["requests_whose_backend_collided"]
        );
        assert_eq!(legs["added_latency_ms"]["count"], legs["requests_slowed"]);
        // The same pairs whatever the number of threads.
        let pairs_3 = tmp.path().join("legs3.jsonl");
        analyze_json(
            &[&frontend, &backend],
            &["--legs", pairs_3.to_str().unwrap(), "--threads", "3"],
        );
        assert_eq!(
            std::fs::read(&pairs_path).unwrap(),
            std::fs::read(&pairs_3).unwrap()
        );
        // One leg alone pairs nothing.
        for one in [&frontend, &backend] {
            let (alone, _) = analyze_json(&[one], &[]);
            assert!(alone.get("legs").is_none(), "{one:?}");
        }
    }
}

/// The report names what the proxy's legs show among its key figures.
#[test]
fn report_counts_the_end_user_requests_slowed() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("report");
    let out = twsleuth(&[
        "report",
        "--quiet",
        fixture("lab/haproxy/lb-frontend.pcap").to_str().unwrap(),
        fixture("lab/haproxy/lb-backend.pcap").to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("| End-user requests slowed (proxy legs paired) | 700 of 800 paired (confidence 1.00), added "),
        "{md}"
    );
}

/// A BIG-IP names each connection's peer flow in its trailers (fixtures/capture/f5/two-legs.pcap:
/// HAProxy's two legs with the flow ids scripts/make_f5_fixtures.py gave them from HAProxy's
/// log): every pair is named, exactly the log's, and the virtual server and the capture's
/// provenance (fileinfo) are given.
#[test]
fn f5_trailers_pair_the_legs_exactly() {
    const PAIRS: usize = 250; // TWO_LEGS_PAIRS in the generator
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lab/haproxy/truth.json")).unwrap())
            .unwrap();
    let mut logged: Vec<&Value> = truth["legs"]["pairing"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    logged.sort_by(|a, b| {
        a["accept"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["accept"].as_f64().unwrap())
    });
    logged.truncate(PAIRS);
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = tmp.path().join("legs.jsonl");
    let capture = fixture("capture/f5/two-legs.pcap");
    let (a, _) = analyze_json(&[&capture], &["--legs", pairs_path.to_str().unwrap()]);
    let legs = &a["legs"];
    assert_eq!(legs["pairs"], PAIRS);
    assert_eq!(legs["named_by_trailer"], PAIRS);
    assert_eq!(legs["confidence"], 1.0);
    let endpoint = |leg: &Value| {
        format!(
            "{}:{}",
            leg["orig"]["ip"].as_str().unwrap(),
            leg["orig"]["port"]
        )
    };
    let ours: Vec<Value> = std::fs::read_to_string(&pairs_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ours.len(), PAIRS);
    for pair in &ours {
        assert_eq!(pair["named_by_trailer"], true, "{pair}");
        let syn_s = pair["backend_syn_ts_ns"].as_i64().unwrap() as f64 / 1e9;
        assert!(
            logged
                .iter()
                .any(|l| l["frontend"] == endpoint(&pair["frontend"])
                    && l["backend"] == endpoint(&pair["backend"])
                    && (l["backend_start"].as_f64().unwrap() - syn_s).abs() < 0.05),
            "not in HAProxy's log: {pair}"
        );
    }
    let collided = logged
        .iter()
        .filter(|l| l["backend_collided"] == true)
        .count();
    assert_eq!(legs["requests_slowed"], collided);
    assert_eq!(
        legs["services"][0]["virtual_server"],
        "/Common/vs_haproxy_lab"
    );
    let info = &a["f5"]["file_info"][0];
    assert_eq!(
        info["command"],
        "/usr/sbin/tcpdump -s0 -ni 0.0:nnn -w /var/tmp/paws.pcap"
    );
    assert_eq!(info["version"], "BIG-IP 17.1.1 Build 0.0.2");
    assert_eq!(info["hostname"], "bigip-lab1.example.com");
    assert_eq!(info["platform"], "Z100");
    let text =
        String::from_utf8(twsleuth(&["analyze", "--quiet", capture.to_str().unwrap()]).stdout)
            .unwrap();
    assert!(
        text.contains("named by F5 trailers' flow ids, confidence 1.00"),
        "{text}"
    );
    assert!(
        text.contains("(virtual server \"/Common/vs_haproxy_lab\"): 250 pairs"),
        "{text}"
    );
    // The report: the virtual server beside the requests slowed, the BIG-IP's provenance in
    // "Method and accounting".
    let out_dir = tmp.path().join("report");
    twsleuth(&[
        "report",
        "--quiet",
        capture.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains(&format!("| End-user requests slowed (proxy legs paired) | {collided} of 250 paired (confidence 1.00), added ")), "{md}");
    assert!(
        md.contains("; F5 virtual server /Common/vs_haproxy_lab |"),
        "{md}"
    );
    assert!(md.contains("two-legs.pcap was captured on bigip-lab1.example.com (BIG-IP 17.1.1 Build 0.0.2, platform Z100) by: /usr/sbin/tcpdump -s0 -ni 0.0:nnn -w /var/tmp/paws.pcap"), "{md}");
}

/// The RST causes a BIG-IP wrote beside the resets of the collisions (the paws capture's 7
/// PAWS rejections, each answered by the client's RST, in the F5 fixtures with medium noise):
/// each cause as many times as tshark's f5ethtrailer dissector reads it on a RST.
#[test]
fn f5_rst_causes_are_shown_beside_the_collisions_resets() {
    for name in [
        "legacy-medium.pcap",
        "legacy-high.pcap",
        "new-medium.pcap",
        "new-high.pcap",
    ] {
        let path = fixture(&format!("capture/f5/{name}"));
        let out = oracle(
            "tshark",
            &[
                "-r",
                path.to_str().unwrap(),
                "-Y",
                "tcp.flags.reset==1",
                "-T",
                "fields",
                "-e",
                "f5ethtrailer.rstcausetxt",
            ],
        );
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for cause in String::from_utf8(out.stdout).unwrap().lines() {
            *expected.entry(cause.to_string()).or_default() += 1;
        }
        let (a, _) = analyze_json(&[&path], &[]);
        let ours: BTreeMap<String, u64> = a["f5_rst_causes_in_collisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["cause"].as_str().unwrap().to_string(),
                    c["collisions"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ours.values().sum::<u64>(), 7, "{name}");
        assert_eq!(ours, expected, "{name}");
    }
    // In the report, beside the reset in the evidence ladder (the worst collision is a
    // rejection whose RST has a cause).
    let tmp = tempfile::tempdir().unwrap();
    let path = fixture("capture/f5/legacy-medium.pcap");
    let out_dir = tmp.path().join("report");
    twsleuth(&[
        "report",
        "--quiet",
        path.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    // The key figures name every virtual server with its SYNs and RSTs, as stats counts them
    // frame by frame.
    let (s, _) = stats(&path);
    let row = md
        .lines()
        .find(|l| l.starts_with("| F5 virtual servers (BIG-IP trailers)"))
        .expect("a virtual-server row");
    for vs in s["f5"]["virtual_servers"].as_array().unwrap() {
        let shown = format!(
            "{} ({} SYNs, {} RSTs)",
            vs["name"].as_str().unwrap(),
            vs["syn"],
            vs["rst"]
        );
        assert!(row.contains(&shown), "{shown}: {row}");
    }
    assert!(
        md.contains("| F5 RST causes of the collisions' resets |"),
        "{md}"
    );
    assert!(
        md.lines()
            .any(|l| l.contains("client RST (ACK unacceptable in SYN-SENT")
                && l.ends_with("; F5 RST cause: TCP RST from remote system")),
        "{md}"
    );
}

/// The timestamps chart shows what PAWS decided on: in the paws scenario (the balancer's
/// timestamp clock jumped), the kernel refused 7 SYNs whose TSval was older than the
/// TIME_WAIT's ts_recent, and the chart counts them apart; the rejected scenario runs without
/// TCP timestamps, and its chart says so instead of drawing nothing.
#[test]
fn the_timestamps_chart_shows_the_paws_refusals() {
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lab/paws/truth.json")).unwrap())
            .unwrap();
    let collisions = truth["expected"]["collisions"].as_u64().unwrap();
    let paws_rejections = truth["expected"]["paws_rejections"].as_u64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let chart_of = |capture: &str| -> String {
        let out_dir = dir.path().join(capture.replace('/', "-"));
        let out = twsleuth(&[
            "report",
            fixture(capture).to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        std::fs::read_to_string(out_dir.join("charts/syn-timestamps.svg")).unwrap()
    };
    let paws = chart_of("lab/paws/server.pcap");
    assert!(
        paws.contains(&format!(
            "{collisions} colliding SYNs with TSval, {paws_rejections} refused by PAWS"
        )),
        "{paws}"
    );
    // The legend's entry (wrapped over lines) with its count.
    assert!(
        paws.contains("refused by PAWS") && paws.contains(&format!("({paws_rejections})")),
        "{paws}"
    );
    let rejected = chart_of("lab/rejected/server.pcap");
    assert!(
        rejected.contains("no TCP timestamps on the colliding SYNs"),
        "{rejected}"
    );
}

/// A file that ends inside a record is never an all-clear: the capture may have stopped there
/// (tcpdump killed) or gone on in bytes the copy lost; the file cannot tell which. The lab's
/// clean scenario (no collision in the kernel's record) cut at byte 20,000 keeps its first
/// frames, finds nothing, and says that is not an all-clear, with exit 3.
#[test]
fn a_file_cut_short_is_not_an_all_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    let bytes = std::fs::read(fixture("lab/clean/server.pcap")).unwrap();
    std::fs::write(&cut, &bytes[..20_000]).unwrap();
    let out = twsleuth(&["analyze", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let verdict = String::from_utf8(out.stdout).unwrap();
    let first = verdict.lines().next().unwrap();
    assert!(first.contains("but this is not an all-clear"), "{first}");
    assert!(first.contains("cut short"), "{first}");
    let (summary, code) = analyze_json(&[&cut], &[]);
    assert_eq!(code, Some(3));
    assert_eq!(summary["complete"], false);
}

/// What a page measures of itself in a browser, appended to a copy of a report: the viewport's
/// width, the page's, and every element that sticks out of the viewport (an element inside a
/// box that scrolls on its own, a table's or a ladder's, is that box's business). It writes
/// them as JSON on the embedding page's body, where `--dump-dom` shows them.
const LAYOUT_PROBE: &str = r#"<script>
const width = window.innerWidth;
const overflowing = [];
for (const element of document.querySelectorAll("body *")) {
  if (element.closest(".scroll, pre") && !element.matches(".scroll, pre")) continue;
  if (element.closest("svg") && element.tagName.toLowerCase() !== "svg") continue;
  const box = element.getBoundingClientRect();
  if (box.right > width + 1 || box.left < -1) {
    overflowing.push(element.tagName + " " + Math.round(box.left) + ".." + Math.round(box.right));
  }
}
const scrolling = [...document.querySelectorAll(".scroll, pre")]
  .filter((box) => box.scrollWidth > box.clientWidth).length;
const layout = JSON.stringify({width, page: document.documentElement.scrollWidth, overflowing, scrolling});
window.parent.document.body.setAttribute("data-layout", layout);
</script>"#;

/// Lays `html` out in headless Chromium in a frame `width` pixels wide (a phone's width is
/// below the smallest window headless Chromium opens) and returns what [`LAYOUT_PROBE`]
/// measured.
fn browser_layout(html: &str, width: u32) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let page = html.replace("</body>", &format!("{LAYOUT_PROBE}\n</body>"));
    assert_ne!(page, html, "the page has no </body>");
    std::fs::write(dir.path().join("page.html"), page).unwrap();
    std::fs::write(
        dir.path().join("frame.html"),
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe src=\"page.html\" style=\"width:{width}px;height:900px;border:0\"></iframe></body></html>"
        ),
    )
    .unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            // As root in a container: no sandbox, and a small /dev/shm is no obstacle.
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            // The frame's page reports to the page around it: both are files.
            "--allow-file-access-from-files",
            "--window-size=1600,1000",
            "--dump-dom",
        ])
        // Its profile in the test's own directory: HOME may be missing or read-only.
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!(
            "file://{}",
            dir.path().join("frame.html").display()
        ))
        .output()
        .unwrap_or_else(|e| {
            panic!("chromium is needed by the tests (apt-get install chromium): {e}")
        });
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("data-layout=\"")
        .unwrap_or_else(|| panic!("the page did not report its layout: {out:?}"))
        + "data-layout=\"".len();
    let attribute = &dom[start..start + dom[start..].find('"').unwrap()];
    serde_json::from_str(&attribute.replace("&quot;", "\"").replace("&amp;", "&")).unwrap()
}

/// Every example report, laid out by a browser at 1,400 px and at a phone's 390 px, fits the
/// width: nothing sticks out of the page, and what is wider (ladders, wide tables) scrolls
/// inside its own box. A page that does stick out is caught, so the check can fail.
#[test]
fn reports_fit_a_desktop_and_a_phone_in_a_headless_browser() {
    let wide_row: String = (0..40).map(|i| format!("<td>column-{i}</td>")).collect();
    let unwrapped = format!("<html><body><table><tr>{wide_row}</tr></table></body></html>");
    let layout = browser_layout(&unwrapped, 390);
    assert!(
        !layout["overflowing"].as_array().unwrap().is_empty(),
        "the probe missed a table wider than the page: {layout}"
    );
    for name in [
        "haproxy-lb-backend",
        "rejected-server",
        "clean-server",
        "synthetic-lb-cycle",
    ] {
        let html =
            std::fs::read_to_string(repo_root().join("reports").join(name).join("report.html"))
                .unwrap();
        for width in [1400, 390] {
            let layout = browser_layout(&html, width);
            assert_eq!(layout["width"], width, "{name}: {layout}");
            assert!(
                layout["page"].as_u64().unwrap() <= u64::from(width),
                "{name} at {width} px is wider than the page: {layout}"
            );
            assert_eq!(
                layout["overflowing"],
                json!([]),
                "{name} at {width} px: elements stick out of the page"
            );
            if width == 390 && name != "clean-server" {
                // Ladders and the evidence table are wider than a phone: they scroll in place.
                assert!(
                    layout["scrolling"].as_u64().unwrap() > 0,
                    "{name} at {width} px: {layout}"
                );
            }
        }
    }
}

/// `report -`: standard input cannot be read twice, so it is kept in the report's directory
/// (`capture.pcap`, listed in the manifest) and the report is of the kept capture: its ladders
/// are, packet for packet, those a report of the file itself shows (before, a piped report
/// printed empty ladders).
/// A capture of the server's side only: nothing shows the client's ACK that completes a
/// handshake, so a ladder runs to its length. It shows the collision's own connection, not the
/// tuple's next ones (5 s later), and calls an ACK the old connection's only when it carries
/// the old connection's numbers.
#[test]
fn a_one_sided_ladder_shows_its_own_connection_and_only_what_its_numbers_say() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("lab/accepted/one-sided-server.pcap");
    let out = twsleuth(&[
        "report",
        "--quiet",
        input.to_str().unwrap(),
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // (The columns read come before any quoted text.)
    let rows = |file: &str| -> Vec<std::collections::HashMap<String, String>> {
        let csv = std::fs::read_to_string(dir.path().join("data").join(file)).unwrap();
        let mut lines = csv.lines();
        let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
        lines
            .map(|line| {
                header
                    .iter()
                    .cloned()
                    .zip(line.split(',').map(String::from))
                    .collect()
            })
            .collect()
    };
    let first = &rows("collisions.csv")[0];
    let first_syn: u64 = first["first_syn_frame"].parse().unwrap();
    let connection = rows("connections.csv")
        .into_iter()
        .find(|c| c["uid"] == first["uid"])
        .unwrap();
    let last_frame: u64 = connection["last_frame"].parse().unwrap();
    let ladder = &report_ladders(dir.path())[0];
    let frames: Vec<u64> = ladder
        .lines()
        .skip(1)
        .filter_map(|row| row.split_whitespace().nth(1)?.parse().ok())
        .collect();
    let (before, after): (Vec<u64>, Vec<u64>) = frames.iter().partition(|&&f| f < first_syn);
    assert_eq!(before.len(), 4, "the previous connection's close: {ladder}");
    assert_eq!(after.first(), Some(&first_syn), "{ladder}");
    assert_eq!(after.last(), Some(&last_frame), "{ladder}");
    // An accepted SYN meets no TIME_WAIT answer: no ACK carries the old numbers.
    assert!(!ladder.contains("old connection's numbers"), "{ladder}");
}

#[test]
fn report_of_standard_input_keeps_it_and_shows_the_ladders() {
    let input = fixture("lab/rejected/server.pcap");
    let dir = tempfile::tempdir().unwrap();
    let piped = dir.path().join("piped");
    let report_piped = || {
        Command::new(env!("CARGO_BIN_EXE_twsleuth"))
            .args(["report", "--quiet", "-o"])
            .arg(&piped)
            .arg("-")
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap()
    };
    let direct = dir.path().join("direct");
    let out = twsleuth(&[
        "report",
        "--quiet",
        input.to_str().unwrap(),
        "-o",
        direct.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let expected = report_ladders(&direct);
    assert!(expected.len() >= 2, "first and worst collision at least");
    // Twice into the same directory: the kept capture is the report's own, not a foreign file.
    for _ in 0..2 {
        let out = report_piped();
        assert_eq!(
            out.status.code(),
            Some(1),
            "the rejected scenario's 10 collisions: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(piped.join("capture.pcap")).unwrap(),
            std::fs::read(&input).unwrap()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("standard input is kept as") && stderr.contains("capture.pcap"),
            "{stderr}"
        );
        assert!(!piped.join("capture.receiving").exists());
        let manifest = std::fs::read_to_string(piped.join(".twsleuth-report")).unwrap();
        assert!(manifest.lines().any(|l| l == "capture.pcap"), "{manifest}");
        let shown = report_ladders(&piped);
        assert_eq!(shown, expected);
        for ladder in &shown {
            // A header, the previous connection's closing packets and the new handshake.
            assert!(ladder.lines().count() >= 5, "{ladder}");
            assert!(
                ladder.contains("SYN on a tuple the server holds"),
                "{ladder}"
            );
        }
    }
    // Standard input that is not a capture: exit 2, and nothing of it is left behind.
    let text = dir.path().join("text");
    let out = Command::new(env!("CARGO_BIN_EXE_twsleuth"))
        .args(["report", "-o"])
        .arg(&text)
        .arg("-")
        .stdin(std::fs::File::open(repo_root().join("README.md")).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("standard input: not a capture"), "{stderr}");
    assert_eq!(std::fs::read_dir(&text).unwrap().count(), 0);
}
