//! The report as a document: the sections (verdict, key figures, incident timeline, capacity
//! model, evidence, recommendations, method and accounting) laid out from what
//! [`crate::analysis`] made of the findings, for the Markdown and HTML renderers.

use twsleuth_flows::{ReasonCounts, Role, SECOND_NS};

use crate::analysis::{
    Capacity, LINUX_CONNECT_PORTS, closers_sentence, reasons_breakdown, timeline_events, verdict,
};
use crate::document::{Block, Document, Inline, Section};
use crate::limits::Completeness;
use crate::time::{format_utc, format_utc_ms};
use crate::words::{count, duration, human, latency, percent, rate};
use crate::{Evidence, InputFile, ReportInput};

fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

/// Builds the whole document. `capacity` is [`crate::analysis::capacity`]'s model; `charts` are (file name,
/// title) in the order to show them.
pub fn document(
    input: &ReportInput<'_>,
    capacity: &[Capacity],
    charts: &[(String, String)],
) -> Document {
    let mut sections = vec![
        Section {
            title: "Verdict".into(),
            blocks: vec![Block::Paragraph(vec![Inline::Strong(verdict(
                input.summary,
                input.counters,
                input.completeness,
                input.exhaustion,
            ))])],
        },
        cannot_show(input.completeness),
        key_figures(input),
        incident_timeline(input, capacity),
        capacity_section(capacity),
    ];
    if !charts.is_empty() {
        sections.push(Section {
            title: "Charts".into(),
            blocks: charts
                .iter()
                .map(|(file_name, title)| Block::Chart {
                    file_name: file_name.clone(),
                    title: title.clone(),
                })
                .collect(),
        });
    }
    sections.push(evidence_section(input));
    sections.push(recommendations(input, capacity));
    sections.push(method(input));
    Document {
        title: "TIME_WAIT collision report".into(),
        subtitle: format!(
            "twsleuth {} · {}",
            input.tool_version,
            input
                .inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        sections,
    }
}

/// "What this evidence cannot show", filled from the inputs: every limit, the ones that forbid
/// an all-clear first; on a complete capture, that nothing was missing.
fn cannot_show(completeness: &Completeness) -> Section {
    let blocks = if completeness.cannot_show.is_empty() {
        vec![Block::Paragraph(vec![text(
            "Nothing was missing: every connection was captured in both directions, no frame was cut or damaged, no state was evicted, and nothing was inferred.",
        )])]
    } else {
        vec![Block::List(
            completeness
                .cannot_show
                .iter()
                .map(|limit| {
                    let mut item = Vec::new();
                    if limit.blocks_all_clear {
                        item.push(Inline::Strong("Could hide a collision:".into()));
                        item.push(text(" "));
                    }
                    item.push(text(limit.text.clone()));
                    item
                })
                .collect(),
        )]
    };
    Section {
        title: "What this evidence cannot show".into(),
        blocks,
    }
}

fn key_figures(input: &ReportInput<'_>) -> Section {
    let s = input.summary;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |k: &str, v: String| rows.push(vec![k.to_string(), v]);
    if let Some((first, last)) = input.records.capture_span {
        row(
            "Capture span",
            format!(
                "{} → {} ({})",
                format_utc_ms(first),
                format_utc_ms(last),
                duration(last.saturating_sub(first))
            ),
        );
    }
    row("Connections", count(s.connections));
    if !input.f5.virtual_servers.is_empty() {
        let servers: Vec<String> = input
            .f5
            .virtual_servers
            .iter()
            .map(|(name, syn, rst)| format!("{name} ({} SYNs, {} RSTs)", count(*syn), count(*rst)))
            .collect();
        row("F5 virtual servers (BIG-IP trailers)", servers.join("; "));
    }
    if !input.f5.rst_causes.is_empty() {
        let causes: Vec<String> = input
            .f5
            .rst_causes
            .iter()
            .map(|(cause, n)| format!("{cause}: {}", count(*n)))
            .collect();
        row("F5 RST causes of the collisions' resets", causes.join("; "));
    }
    row("SYNs (retransmissions included)", count(s.syn));
    let r = &input.records.rate;
    if let (Some(peak), Some(mean)) = (r.peak_per_s, r.mean_per_s) {
        row(
            "New connections per second",
            format!(
                "peak {} (busiest sliding {} window{}), mean {} over {}",
                rate(peak),
                duration(r.window_ns),
                if r.span_ns < 10 * SECOND_NS {
                    ": a tenth of the span"
                } else {
                    ""
                },
                rate(mean),
                duration(r.span_ns)
            ),
        );
    }
    for src in &s.sources {
        row(
            &format!("Source {}", src.orig_h),
            format!(
                "{} connections, ports {}–{} ({} in use), reuse interval min {} / median {}",
                count(src.connections),
                src.port_min,
                src.port_max,
                count(src.ports_in_use),
                src.min_reuse_interval_ns.map_or("–".into(), duration),
                src.median_reuse_interval_ns.map_or("–".into(), duration),
            ),
        );
    }
    let c = &s.collisions;
    row(
        "Collisions with TIME_WAIT",
        format!(
            "{} (accepted {}, rejected then recovered {}, reset {}, unanswered {}, failed {}{})",
            count(c.total),
            count(c.accepted),
            count(c.rejected_recovered),
            count(c.reset),
            count(c.unanswered),
            count(c.failed),
            if c.unknown > 0 {
                format!(
                    ", outcome not visible in this capture {}; inferred from one direction {}",
                    count(c.unknown),
                    count(c.inferred)
                )
            } else if c.inferred > 0 {
                format!("; inferred from one direction {}", count(c.inferred))
            } else {
                String::new()
            }
        ),
    );
    if s.reasons.total() > 0 {
        row("Refused, by reason", reasons_breakdown(&s.reasons));
    }
    if s.reasons.time_wait_assassinated > 0 {
        row(
            "Recovered by ending the TIME_WAIT",
            format!(
                "{} (the client's RST answering the bare ACK carried the old rcv_nxt, which ends the server's TIME_WAIT: RFC 1337 assassination, allowed by tcp_rfc1337=0)",
                count(s.reasons.time_wait_assassinated)
            ),
        );
    }
    let held: Vec<String> = s
        .time_wait_holders
        .iter()
        .rev()
        .map(|(who, n)| format!("{who} {}", count(*n)))
        .collect();
    row(
        "TIME_WAIT held by (who closed first)",
        if held.is_empty() {
            closers_sentence(&s.active_closers, s.connections)
        } else {
            format!(
                "{} Collisions hit the TIME_WAIT of: {}.",
                closers_sentence(&s.active_closers, s.connections),
                held.join(", ")
            )
        },
    );
    if s.added_latency_ms.count > 0 {
        row(
            "Added latency (first SYN → SYN-ACK, collided)",
            latency(&s.added_latency_ms),
        );
    }
    if s.clean_handshake_ms.count > 0 {
        row(
            "Handshake (first SYN → SYN-ACK, clean)",
            latency(&s.clean_handshake_ms),
        );
    }
    if let Some(legs) = &s.legs {
        let added = if legs.added_latency_ms.count > 0 {
            format!(", added {}", latency(&legs.added_latency_ms))
        } else {
            String::new()
        };
        let named: Vec<&str> = legs
            .services
            .iter()
            .filter(|s| s.proxy)
            .filter_map(|s| s.virtual_server.as_deref())
            .collect();
        let virtual_servers = if named.is_empty() {
            String::new()
        } else {
            format!("; F5 virtual server {}", named.join(", "))
        };
        row(
            "End-user requests slowed (proxy legs paired)",
            format!(
                "{} of {} paired (confidence {:.2}){added}{virtual_servers}",
                count(legs.requests_slowed),
                count(legs.pairs),
                legs.confidence
            ),
        );
    }
    if let Some(a) = s.prediction_agreement {
        row(
            "Linux prediction agrees with the wire",
            format!("{:.1}%", a * 100.0),
        );
    }
    row(
        "Port reuses / client-side TIME_WAIT reuse",
        format!(
            "{} / {}",
            count(s.reused_tuples),
            count(s.client_side_reuse)
        ),
    );
    Section {
        title: "Key figures".into(),
        blocks: vec![Block::Table {
            header: vec!["Figure".into(), "Value".into()],
            rows,
        }],
    }
}

fn incident_timeline(input: &ReportInput<'_>, capacity: &[Capacity]) -> Section {
    let events = timeline_events(input, capacity);
    let blocks = if events.is_empty() {
        vec![Block::Paragraph(vec![text(
            "No collision, and no source's ports came close to being held in TIME_WAIT.",
        )])]
    } else {
        vec![Block::Table {
            header: vec!["Time (UTC)".into(), "Event".into()],
            rows: events
                .into_iter()
                .map(|(ts, what)| vec![format_utc_ms(ts), what])
                .collect(),
        }]
    };
    Section {
        title: "Timeline".into(),
        blocks,
    }
}

/// The capacity model's section: what the model says, and a row per busy source.
pub(crate) fn capacity_section(capacity: &[Capacity]) -> Section {
    let mut blocks = vec![Block::Paragraph(vec![text(
        "A source address can open at most (tuples it cycles through) ÷ TIME_WAIT new connections per second before it comes back to a tuple the server still holds in TIME_WAIT (DESIGN.md section 1). A tuple here is a source port with a server address and port, as the source really used them: its ports (Linux takes one parity first), each toward the servers it went to. That is ports × destinations when every port goes to every server, and only the ports when the balancer ties each port to one server. The model applies only where the server closed first and so holds the TIME_WAIT; where the source closed first the TIME_WAIT is its own, and more addresses do nothing for the server.",
    )])];
    if capacity.is_empty() {
        return Section {
            title: "Capacity model".into(),
            blocks,
        };
    }
    blocks.push(Block::Table {
        header: vec![
            "Source".into(),
            "Ports in use".into(),
            "Destinations".into(),
            "Tuples in use".into(),
            "Sustainable (conn/s)".into(),
            "Peak (conn/s)".into(),
            "Mean (conn/s)".into(),
            "TIME_WAIT held by".into(),
            "Addresses needed".into(),
            "… with ports 1024–65535 (Linux connect(): the 32,256 of one parity)".into(),
        ],
        rows: capacity
            .iter()
            .map(|c| {
                vec![
                    c.source.clone(),
                    count(c.ports_in_use),
                    count(c.destinations),
                    count(c.tuples_in_use),
                    if c.server_holds_time_wait() {
                        rate(c.sustainable_per_s)
                    } else {
                        "–".into()
                    },
                    rate(c.peak_per_s),
                    rate(c.mean_per_s),
                    holder_cell(c),
                    c.addresses_needed
                        .map_or("– (server holds no TIME_WAIT)".into(), count),
                    c.addresses_needed_full_range.map_or("–".into(), count),
                ]
            })
            .collect(),
    });
    let mut arithmetic = Vec::new();
    for c in capacity {
        let (Some(needed), Some(needed_full_range)) =
            (c.addresses_needed, c.addresses_needed_full_range)
        else {
            arithmetic.push(vec![text(format!(
                "{}: the server closed first in none of its connections (the source did in {}), so the TIME_WAIT is the source's own: reusing it hits no server state, and no SNAT address is needed against collisions.",
                c.source,
                count(c.client_closed_first)
            ))]);
            continue;
        };
        arithmetic.push(vec![text(format!(
            "{}: {} tuples in use ({} ports toward {} destination{}) ÷ {:.0} s = {} conn/s sustainable; the peak of {} conn/s needs ⌈{} × {:.0} ÷ {}⌉ = {} address(es) with these ports, or {} with ports 1024–65535, of which Linux connect() uses the 32,256 of one parity while the balancer holds no TIME_WAIT of its own ({} tuples each; a balancer allocating every port of the range gets twice as many).",
            c.source,
            count(c.tuples_in_use),
            count(c.ports_in_use),
            count(c.destinations),
            if c.destinations == 1 { "" } else { "s" },
            c.time_wait_s,
            rate(c.sustainable_per_s),
            rate(c.peak_per_s),
            rate(c.peak_per_s),
            c.time_wait_s,
            count(c.tuples_in_use),
            count(needed),
            count(needed_full_range),
            count(c.full_range_tuples())
        ))]);
    }
    blocks.push(Block::List(arithmetic));
    Section {
        title: "Capacity model".into(),
        blocks,
    }
}

/// Who holds the TIME_WAIT on a source's tuples: who closed first in its connections.
fn holder_cell(c: &Capacity) -> String {
    match (c.server_closed_first, c.client_closed_first) {
        (0, 0) => "not seen (no close)".into(),
        (server, 0) => format!("server ({})", count(server)),
        (0, client) => format!("client, its own ({})", count(client)),
        (server, client) => format!("server ({}), client ({})", count(server), count(client)),
    }
}

/// A Wireshark display filter that opens exactly this conversation between these frames.
pub fn display_filter(e: &Evidence) -> String {
    let c = &e.collision;
    // Frame numbers count within one file: the range covers the steps in the first SYN's file
    // (the previous connection may have ended in the file before, in a set of files).
    let syn = c.first_syn_frame;
    let in_file = || {
        e.steps
            .iter()
            .filter(move |s| s.file_index == syn.file_index)
            .map(|s| s.frame)
    };
    let first = in_file().min().unwrap_or(syn.number);
    let last = in_file().max().unwrap_or(syn.number);
    format!(
        "{} && frame.number>={first} && frame.number<={last}",
        crate::tables::tuple_filter(c)
    )
}

/// The widest input name in a ladder row.
const LADDER_INPUT_CHARS: usize = 40;

/// The packet ladder as fixed-width text: time offset, direction, flags, numbers, note; TSval
/// and TSecr when the segments carry timestamps (what PAWS decides on).
pub fn ladder(e: &Evidence, inputs: &[InputFile]) -> String {
    let Some(start) = e.steps.iter().find(|s| {
        (s.file_index, s.frame)
            == (
                e.collision.first_syn_frame.file_index,
                e.collision.first_syn_frame.number,
            )
    }) else {
        return String::new();
    };
    let t0 = start.ts_ns;
    let timestamps = e.steps.iter().any(|s| s.tsval.is_some());
    // With several inputs, frame numbers are per input: each row names its input (a capture
    // of the balancer and one of the server both have a frame 101).
    let input_names: Option<Vec<String>> = (inputs.len() > 1).then(|| {
        inputs
            .iter()
            .map(|i| {
                let name = std::path::Path::new(&i.name)
                    .file_name()
                    .map_or_else(|| i.name.clone(), |n| n.to_string_lossy().into_owned());
                // The end tells the files of a ring or an archive apart: keep it.
                let chars: Vec<char> = name.chars().collect();
                if chars.len() > LADDER_INPUT_CHARS {
                    let tail: String = chars[chars.len() - (LADDER_INPUT_CHARS - 1)..]
                        .iter()
                        .collect();
                    format!("…{tail}")
                } else {
                    name
                }
            })
            .collect()
    });
    let input_width = input_names.as_ref().map_or(0, |names| {
        names.iter().map(|n| n.chars().count()).max().unwrap_or(0)
    });
    let mut out = String::from("  time (ms)  ");
    if input_names.is_some() {
        out.push_str(&format!("{:<input_width$}  ", "input"));
    }
    out.push_str("frame   direction            flags  seq         ack         len  ");
    if timestamps {
        out.push_str("TSval       TSecr       ");
    }
    out.push_str("note\n");
    let number = |n: Option<u32>| n.map_or("–".to_string(), |n| n.to_string());
    for s in &e.steps {
        let arrow = match s.from {
            Role::Orig => "client → server",
            Role::Resp => "client ← server",
        };
        out.push_str(&format!(
            "{:>11.3}  ",
            s.ts_ns.saturating_sub(t0) as f64 / 1e6
        ));
        if let Some(names) = &input_names {
            let name = names
                .get(usize::from(s.file_index))
                .map_or("?", String::as_str);
            out.push_str(&format!("{name:<input_width$}  "));
        }
        out.push_str(&format!(
            "{:>6}  {:<19}  {:<5}  {:<10}  {:<10}  {:>4}  ",
            s.frame, arrow, s.flags, s.seq, s.ack, s.payload_len,
        ));
        if timestamps {
            out.push_str(&format!(
                "{:<10}  {:<10}  ",
                number(s.tsval),
                number(s.tsecr)
            ));
        }
        out.push_str(&s.note);
        out.push('\n');
    }
    out
}

fn evidence_section(input: &ReportInput<'_>) -> Section {
    let mut blocks = Vec::new();
    if input.evidence.is_empty() {
        blocks.push(Block::Paragraph(vec![text("No collision to show.")]));
    }
    for e in &input.evidence {
        let c = &e.collision;
        let file = input
            .inputs
            .get(usize::from(c.first_syn_frame.file_index))
            .map_or("?", |i| i.name.as_str());
        blocks.push(Block::Paragraph(vec![
            Inline::Strong(format!("{}:", e.label)),
            text(format!(
                " {}:{} → {}:{} at {}, {} (first reply: {}; {} SYN(s); cost {}); the {} had held the tuple in TIME_WAIT for {}. File ",
                c.orig_h,
                c.orig_p,
                c.resp_h,
                c.resp_p,
                format_utc(c.ts_ns),
                human(&c.outcome),
                human(&c.first_reply),
                c.syn_attempts,
                c.cost_ns.map_or("–".into(), duration),
                match c.holder_role {
                    Role::Resp => "server",
                    Role::Orig => "client",
                },
                duration(c.time_wait_age_ns),
            )),
            Inline::Code(file.to_string()),
            text(format!(", frame {}. Wireshark filter: ", c.first_syn_frame.number)),
            Inline::Code(display_filter(e)),
        ]));
        if e.steps.is_empty() {
            // The capture was gone or changed when it was read again for the packets.
            blocks.push(Block::Paragraph(vec![text(
                "No ladder: this collision's packets were not found when the capture was read again.",
            )]));
        } else {
            blocks.push(Block::Preformatted(ladder(e, &input.inputs)));
        }
    }
    // Every collision of an outcome at once: its first SYNs, in one input.
    let mut filters: Vec<Vec<Inline>> = Vec::new();
    for ((outcome, file_index), (frames, n)) in &input.records.collisions.syn_frames {
        let file = input
            .inputs
            .get(usize::from(*file_index))
            .map_or("?", |i| i.name.as_str());
        let what = format!(
            "{} {} collision{}",
            count(*n),
            human(outcome),
            if *n == 1 { "" } else { "s" }
        );
        if *n > frames.len() as u64 {
            filters.push(vec![text(format!(
                "{what} in "),
            ), Inline::Code(file.to_string()), text(format!(
                ": more than {} first SYNs for one filter; data/collisions.csv has each one's (column wireshark_filter).",
                count(crate::stream::FILTER_FRAMES_MAX as u64)
            ))]);
            continue;
        }
        let numbers: Vec<String> = frames.iter().map(u64::to_string).collect();
        filters.push(vec![
            text(format!("{what} in ")),
            Inline::Code(file.to_string()),
            text(", their first SYNs: "),
            Inline::Code(format!("frame.number in {{{}}}", numbers.join(", "))),
        ]);
    }
    if !filters.is_empty() {
        blocks.push(Block::Paragraph(vec![Inline::Strong(
            "Wireshark filters, per outcome:".into(),
        )]));
        blocks.push(Block::List(filters));
    }
    Section {
        title: "Evidence".into(),
        blocks,
    }
}

fn recommendations(input: &ReportInput<'_>, capacity: &[Capacity]) -> Section {
    let s = input.summary;
    let c = &s.collisions;
    let mut items: Vec<Vec<Inline>> = Vec::new();
    let server_closed_first = input.records.server_closed_first;
    if c.total > 0 {
        // Accepted collisions are answered at once, as a fresh tuple would be: they cost
        // nothing, and more addresses only buy margin against what could change.
        let harmless = c.accepted == c.total;
        if harmless {
            items.push(harmless_collisions(input));
        }
        items.extend(refusal_remedies(&s.reasons));
        if let Some((cap, needed)) = capacity
            .iter()
            .filter_map(|cap| Some((cap, cap.addresses_needed?)))
            .find(|(_, needed)| *needed > 1)
        {
            items.push(vec![
                Inline::Strong(if harmless {
                    "More SNAT addresses, as margin only. ".into()
                } else {
                    "More SNAT addresses. ".into()
                }),
                text(format!(
                    "{} peaks at {} new connections per second against {} sustainable with the {} tuples it used: use at least {} SNAT addresses with the same ports (or {} with ports 1024–65535, of which a Linux balancer's connect() uses the 32,256 of one parity).{}",
                    cap.source,
                    rate(cap.peak_per_s),
                    rate(cap.sustainable_per_s),
                    count(cap.tuples_in_use),
                    count(needed),
                    count(cap.addresses_needed_full_range.unwrap_or(needed)),
                    if harmless {
                        " This removes collisions that cost nothing today; it matters once one of the changes above makes them refused."
                    } else {
                        ""
                    }
                )),
            ]);
        }
        if let Some(cap) = capacity
            .iter()
            .filter(|cap| cap.server_holds_time_wait())
            .find(|cap| cap.ports_in_use < LINUX_CONNECT_PORTS)
        {
            items.push(vec![
                Inline::Strong("Wider source port range. ".into()),
                text(format!(
                    "{} used only {} source ports; on a Linux balancer widen ",
                    cap.source,
                    count(cap.ports_in_use)
                )),
                Inline::Code("net.ipv4.ip_local_port_range = 1024 65535".into()),
                text(" (or the balancer's SNAT port pool) to multiply the sustainable rate."),
            ]);
        }
        if s.time_wait_holders.get("server").copied().unwrap_or(0) > 0 {
            items.push(vec![
                Inline::Strong("Let the balancer close first, or keep connections alive. ".into()),
                text(format!(
                    "The server closed first in {} of {} connections, so the server holds every TIME_WAIT: HTTP keep-alive (connection reuse) toward the servers removes most new connections, and a client-side close moves TIME_WAIT to the balancer, where reuse is its own business.",
                    count(server_closed_first),
                    count(s.connections)
                )),
            ]);
            items.push(vec![
                Inline::Strong("tcp_tw_reuse will not help here. ".into()),
                Inline::Code("net.ipv4.tcp_tw_reuse".into()),
                text(" only lets the connecting side reuse its own TIME_WAIT; here the server holds it."),
            ]);
        }
    } else {
        let headroom: Vec<String> = capacity
            .iter()
            .filter(|c| c.server_holds_time_wait())
            .map(|c| {
                format!(
                    "{}: peak {} conn/s of {} sustainable",
                    c.source,
                    rate(c.peak_per_s),
                    rate(c.sustainable_per_s)
                )
            })
            .collect();
        items.push(vec![text(format!(
            "No change needed for TIME_WAIT. Headroom: {}.",
            if capacity.is_empty() {
                "n/a".to_string()
            } else if headroom.is_empty() {
                "none to measure: the server held no TIME_WAIT".to_string()
            } else {
                headroom.join("; ")
            }
        ))]);
    }
    if s.client_side_reuse > 0 {
        items.push(vec![text(format!(
            "{} SYNs reused a tuple their own sender held in TIME_WAIT (tcp_tw_reuse or a balancer ignoring its own TIME_WAIT): harmless to the server, not collisions.",
            count(s.client_side_reuse)
        ))]);
    }
    items.push(vec![
        Inline::Strong("Never ".into()),
        Inline::Code("tcp_tw_recycle".into()),
        text(": it broke clients behind NAT and was removed in Linux 4.12."),
    ]);
    Section {
        title: "Recommendations".into(),
        blocks: vec![Block::List(items)],
    }
}

/// What a postmortem should know about collisions that were all accepted: that they cost
/// nothing, and which changes would have the server refuse them.
fn harmless_collisions(input: &ReportInput<'_>) -> Vec<Inline> {
    let s = input.summary;
    let c = &s.collisions;
    let r = &s.reasons;
    let mut risks = Vec::new();
    if s.prediction_agreement.is_some() {
        // Linux's rules (tcp_timewait_state_process): each acceptance rests on the SYN's
        // numbers, and these are the changes that take it away.
        if r.accepted_with_timestamps > 0 {
            risks.push(format!(
                "a timestamp clock that goes back on the balancer's side (net.ipv4.tcp_timestamps changed, a standby balancer taking over the SNAT address, hosts with different clocks behind one SNAT address): PAWS refuses a SYN whose TSval is older than the TIME_WAIT's ts_recent, whatever its sequence number ({} of these SYNs carried timestamps)",
                count(r.accepted_with_timestamps)
            ));
        }
        risks.push(format!(
            "timestamps off on either side: then only a sequence number after the old rcv_nxt gets a SYN accepted, and a new ISN below it (a large upload on the old connection, another host behind the SNAT address) is refused{}",
            if r.accepted_by_newer_timestamp > 0 {
                format!(
                    "; {} of these were accepted only for their newer TSval (RFC 6191)",
                    count(r.accepted_by_newer_timestamp)
                )
            } else {
                String::new()
            }
        ));
    }
    risks.push(
        "a failover to a server that is not Linux: other stacks decide by other rules and may keep TIME_WAIT longer (Windows 120 s), and twsleuth's prediction does not model them".into(),
    );
    let mut item = vec![
        Inline::Strong("These collisions cost nothing today. ".into()),
        text(format!(
            "All {} were accepted at their first SYN: the server answered each with a SYN-ACK at once, as on a fresh tuple, so no connection waited{}. Nothing needs fixing for them now. A refused SYN costs a retry (about 10 ms on Linux 6.x, 1 s on older kernels) or the connection, and these changes would have the server refuse them: ",
            count(c.accepted),
            if s.added_latency_ms.count > 0 {
                format!(
                    " (first SYN → SYN-ACK p95 {:.2} ms, against {:.2} ms on clean tuples)",
                    s.added_latency_ms.p95, s.clean_handshake_ms.p95
                )
            } else {
                String::new()
            }
        )),
    ];
    item.push(text(format!("{}.", risks.join("; "))));
    item
}

/// What to change for each reason collisions were refused: the remedy follows the reason.
fn refusal_remedies(r: &ReasonCounts) -> Vec<Vec<Inline>> {
    let mut items = Vec::new();
    if r.paws > 0 {
        items.push(vec![
            Inline::Strong("Fix the timestamp clock, not the timestamps (PAWS). ".into()),
            text(format!(
                "{} SYNs were refused because their TSval was older than the one the server had last seen on the tuple (ts_recent), by up to {} TSval ticks, milliseconds on Linux (RFC 7323 section 5.3; Linux's tcp_timewait_state_process): the timestamps coming from that address went back. Usual causes: ",
                count(r.paws),
                count(u64::from(r.paws_max_step_back))
            )),
            Inline::Code("net.ipv4.tcp_timestamps".into()),
            text(" changed on a live balancer (mode 1 adds a random offset per 4-tuple, mode 2 none), a standby balancer taking over the SNAT address with its own clock, or several hosts with unrelated clocks behind one SNAT address. Keep one timestamp setting and one clock per SNAT address (change the setting only with the balancer drained for a TIME_WAIT length, 60 s), and give each host its own SNAT address. These SYNs carried timestamps: turning timestamps on does nothing for them, and turning them off would leave only sequence numbers to decide."),
        ]);
    }
    let without = r.seq_not_after_rcv_nxt_without_timestamps;
    if without > 0 {
        items.push(vec![
            Inline::Strong("Timestamps on both sides. ".into()),
            text(format!(
                "{} SYNs were refused because their sequence number was not after the old connection's rcv_nxt and they carried no TCP timestamps: with ",
                count(without)
            )),
            Inline::Code("net.ipv4.tcp_timestamps = 1".into()),
            text(" on the balancer and the servers, Linux accepts such a SYN when its TSval is newer than the TIME_WAIT's ts_recent (RFC 6191), provided each SNAT address keeps one timestamp clock."),
        ]);
    }
    let with = r.seq_not_after_rcv_nxt - without;
    if with > 0 {
        items.push(vec![
            Inline::Strong("Sequence numbers and timestamps both old. ".into()),
            text(format!(
                "{} SYNs carried timestamps, but neither their sequence number (not after the old rcv_nxt) nor their TSval (not newer than ts_recent) was new enough: a reconnect within the same timestamp tick, or another host behind the SNAT address. Keep each SNAT address to one host, or keep connections alive.",
                count(with)
            )),
        ]);
    }
    if r.holder_reset > 0 {
        items.push(vec![
            Inline::Strong("Find who sends the resets. ".into()),
            text(format!(
                "{} SYNs were answered with a RST on a tuple in TIME_WAIT, which Linux's TIME_WAIT never does (it answers with an ACK): the server runs another stack (set --server-os), or a firewall or middlebox between answered.",
                count(r.holder_reset)
            )),
        ]);
    }
    if r.linux_would_accept > 0 {
        items.push(vec![
            Inline::Strong("Check the server's stack. ".into()),
            text(format!(
                "{} SYNs were refused although Linux accepts their numbers: the server is not Linux (set --server-os), or the capture missed a segment (a SYN lost on the way, an answer not captured).",
                count(r.linux_would_accept)
            )),
        ]);
    }
    if r.time_wait_assassinated > 0 {
        items.push(vec![
            Inline::Strong("Leave tcp_rfc1337 at 0 on the servers. ".into()),
            text(format!(
                "{} refused SYNs got through only because the client's RST ended the server's TIME_WAIT (RFC 1337 TIME-WAIT assassination, which Linux allows with ",
                count(r.time_wait_assassinated)
            )),
            Inline::Code("net.ipv4.tcp_rfc1337 = 0".into()),
            text("): with 1 the server ignores that RST and keeps refusing the retried SYNs until its TIME_WAIT ends."),
        ]);
    }
    items
}

fn method(input: &ReportInput<'_>) -> Section {
    let mut blocks = vec![Block::Table {
        header: vec![
            "Input".into(),
            "SHA-256".into(),
            "Frames".into(),
            "Damage".into(),
        ],
        rows: input
            .inputs
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    i.sha256
                        .clone()
                        .unwrap_or_else(|| "(standard input: not hashed)".into()),
                    count(i.frames),
                    i.damage.clone().unwrap_or_else(|| "none".into()),
                ]
            })
            .collect(),
    }];
    // The capture's provenance as the BIG-IP recorded it (capture-derived text, escaped by
    // the renderers like every cell).
    for (i, info) in input
        .inputs
        .iter()
        .filter_map(|i| Some((i, i.captured_by.as_ref()?)))
    {
        let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        blocks.push(Block::Paragraph(vec![text(format!(
            "{} was captured on {} ({}, platform {}) by: {}",
            i.name,
            field(&info.hostname),
            field(&info.version),
            field(&info.platform),
            field(&info.command)
        ))]));
    }
    // Several inputs: which are views of the same traffic (joined, clocks compared) and which
    // were analysed beside the others.
    if !input.capture_points.is_empty() {
        blocks.push(Block::Paragraph(vec![text(
            "How the inputs were put together:",
        )]));
        blocks.push(Block::List(
            input
                .capture_points
                .iter()
                .map(|sentence| vec![text(sentence.clone())])
                .collect(),
        ));
    }
    let policy = input.policy;
    let mut assumptions = vec![vec![text(format!(
        "TIME_WAIT lasts {} on every host{}; a SYN up to {} after the nominal end counts only if the server's answer shows TIME_WAIT (Linux's timer wheel ends it 60.0–62.05 s after it began).",
        duration(policy.default_ns),
        if policy.per_host.is_empty() {
            String::new()
        } else {
            format!(
                " except {}",
                policy
                    .per_host
                    .iter()
                    .map(|(ip, ns)| format!("{ip} ({})", duration(*ns)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        duration(policy.edge_slack_ns)
    ))]];
    assumptions.push(vec![text(
        "TIME_WAIT starts when the endpoint that closed first acknowledges its peer's FIN, as seen at the capture point: a capture at the other end sees it half a round trip later.",
    )]);
    assumptions.push(vec![text(
        "The prediction models Linux's tcp_timewait_state_process: accept when the SYN's sequence number is after the old rcv_nxt or its timestamp is newer than the old ts_recent, unless PAWS rejects an older timestamp.",
    )]);
    // The figures are gathered record by record so that memory does not grow with the
    // capture: counts are exact, percentiles come from log histograms.
    assumptions.push(vec![text(
        "Counts are exact. Percentiles come from log histograms, so that memory does not grow with the capture: latency and cost percentiles are within 0.8% of the exact nearest-rank value, a source's median reuse interval within 3.1%; the port-reuse charts draw a deterministic sample of the connections (said in each legend) with exact counts.",
    )]);
    blocks.push(Block::List(assumptions));
    let a = input.accounting;
    let t = input.counters;
    let low_confidence = input.records.low_confidence;
    blocks.push(Block::Table {
        header: vec!["Accounting".into(), "Count".into()],
        rows: vec![
            vec!["Frames read".into(), count(a.frames)],
            vec![
                "TCP segments".into(),
                format!(
                    "{} ({})",
                    count(a.tcp_segments),
                    percent(a.tcp_segments, a.frames)
                ),
            ],
            vec!["Other IP".into(), count(a.other_ip)],
            vec!["Non-IP".into(), count(a.non_ip)],
            vec!["Malformed".into(), count(a.malformed)],
            vec!["Truncated (TCP header cut)".into(), count(a.truncated)],
            vec!["IP fragments".into(), count(a.fragments)],
            vec![
                "Connections evicted idle / over the memory cap".into(),
                format!(
                    "{} / {}",
                    count(t.idle_evictions),
                    count(t.memory_evictions)
                ),
            ],
            vec![
                "Failed connection attempts (no SYN-ACK, fresh tuple)".into(),
                count(t.failed_attempts),
            ],
            vec![
                "Connections inferred with low confidence".into(),
                count(low_confidence),
            ],
            vec![
                "Edge cases dismissed (SYN after TIME_WAIT ended)".into(),
                count(t.edge_cases_dismissed),
            ],
            vec![
                "Late segments after a connection was closed".into(),
                count(t.late_segments),
            ],
            vec![
                "Duplicate segments (captured twice)".into(),
                count(t.duplicate_segments),
            ],
        ],
    });
    if !a.is_closed() {
        blocks.push(Block::Paragraph(vec![Inline::Strong(
            "The accounting does not add up: please report this.".into(),
        )]));
    }
    Section {
        title: "Method and accounting".into(),
        blocks,
    }
}
