//! What the capture itself can and cannot show (issue 11): frames captured
//! twice, handshakes cut by the end of the capture, segments that do not
//! fit their connection, one-sided and partial captures, damaged and
//! overlapping inputs. Packet-built cases first; the public corpus files
//! the issue names run when `../shared/corpus` exists and say "skipped"
//! otherwise.

use crate::support::*;
use std::path::{Path, PathBuf};
use timewait::analysis::Analysis;

/// A file of the public corpus, or `None` (and a visible "skipped" line)
/// when the corpus is not beside the clone.
fn corpus_file(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("corpus file {} not found, test skipped", p.display());
        None
    }
}

fn kinds(a: &Analysis) -> Vec<&'static str> {
    a.findings.iter().map(|f| f.kind.as_str()).collect()
}

#[test]
fn duplicate_frames_are_counted_in_the_report_line() {
    let path = fixture("dup-capture.pcap");
    let out = timewait(&["analyze", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("22 duplicate frames ignored"), "{text}");
    let json = timewait(&["analyze", "--format", "json", path.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["summary"]["duplicate_frames"], 22);
}

#[test]
fn ctu_capture_copies_are_no_fin_retransmission() {
    // Every packet of zeek/tcp/ctu-64702-888.pcap is in the file twice,
    // ≤ 1 µs apart with the same IP id; the two RSTs at the end are 241 µs
    // apart and are two packets.
    let Some(path) = corpus_file("zeek/tcp/ctu-64702-888.pcap") else {
        return;
    };
    let a = analyze_file(&path);
    assert_eq!(a.summary.duplicate_frames, 7);
    let c = &a.connections[0];
    assert_eq!(c.close.fin_retransmits, 0);
    assert_eq!(c.handshake.synack_frame, Some(1));
    assert!(
        !kinds(&a).contains(&"fin-retransmit-rst"),
        "{:?}",
        kinds(&a)
    );
}

/// A little-endian µs pcap of Ethernet frames built by the test.
pub struct Pcap {
    bytes: Vec<u8>,
}

/// One frame: (µs since the start, source, destination, TCP header
/// builder). Addresses are `[a, b, c, d]:port`.
pub type Ep = ([u8; 4], u16);

impl Pcap {
    pub fn new() -> Pcap {
        Pcap {
            bytes: pcap_header(65535, 1),
        }
    }

    /// A TCP segment at `us` µs (from 1,700,000,000 s) with IP id `id`.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &mut self,
        us: u64,
        from: Ep,
        to: Ep,
        flags: &str,
        seq: u32,
        ack: u32,
        payload: &[u8],
        id: u16,
    ) -> &mut Pcap {
        let mut ip =
            etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, from.0, to.0).unwrap();
        ip.identification = id;
        let mut tcp = etherparse::TcpHeader::new(from.1, to.1, seq, 1000);
        tcp.syn = flags.contains('S');
        tcp.fin = flags.contains('F');
        tcp.rst = flags.contains('R');
        tcp.psh = flags.contains('P');
        tcp.urg = flags.contains('U');
        tcp.ack = flags.contains('A');
        if tcp.ack {
            tcp.acknowledgment_number = ack;
        }
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .tcp_header(tcp)
            .write(&mut frame, payload)
            .unwrap();
        let b = &mut self.bytes;
        b.extend_from_slice(&((us / 1_000_000) as u32 + 1_700_000_000).to_le_bytes());
        b.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&frame);
        self
    }

    pub fn analyze(&self) -> Analysis {
        timewait::analysis::analyze(
            "built.pcap",
            &self.bytes[..],
            &timewait::analysis::Options::default(),
        )
        .expect("built capture reads")
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

pub const CLIENT: Ep = ([10, 0, 0, 1], 40000);
pub const SERVER: Ep = ([10, 0, 0, 2], 80);

/// A whole connection from `port` at `us`: handshake, request, response,
/// the client closes first.
pub fn whole_connection(p: &mut Pcap, us: u64, port: u16) {
    let c = (CLIENT.0, port);
    let s = SERVER;
    p.tcp(us, c, s, "S", 100, 0, &[], 1)
        .tcp(us + 100, s, c, "SA", 500, 101, &[], 0)
        .tcp(us + 200, c, s, "A", 101, 501, &[], 2)
        .tcp(us + 300, c, s, "PA", 101, 501, b"GET", 3)
        .tcp(us + 400, s, c, "PA", 501, 104, b"OK", 1)
        .tcp(us + 500, c, s, "FA", 104, 503, &[], 4)
        .tcp(us + 600, s, c, "FA", 503, 105, &[], 2)
        .tcp(us + 700, c, s, "A", 105, 504, &[], 5);
}

#[test]
fn a_syn_in_the_last_second_of_the_capture_is_cut_not_failed() {
    // Connection 0 is whole; connection 1's SYN comes 0.4 s before the
    // last packet (of connection 2); connection 3's SYN 2 s before it and
    // never answered: its retransmission was due at 1 s.
    let mut p = Pcap::new();
    p.tcp(0, (CLIENT.0, 40003), SERVER, "S", 9, 0, &[], 9);
    whole_connection(&mut p, 1_000_000, 40000);
    p.tcp(1_600_000, CLIENT, SERVER, "S", 7, 0, &[], 7).tcp(
        1_600_000,
        (CLIENT.0, 40001),
        SERVER,
        "S",
        8,
        0,
        &[],
        8,
    );
    whole_connection(&mut p, 1_999_000, 40002);
    let a = p.analyze();
    let cut: Vec<(u16, bool)> = a
        .connections
        .iter()
        .map(|c| (c.client.port(), c.handshake.cut_by_capture_end))
        .collect();
    assert_eq!(
        cut,
        [
            (40003, false),
            (40000, false),
            (40000, true),
            (40001, true),
            (40002, false)
        ]
    );
}

#[test]
fn an_nmap_probe_is_no_connection_attempt() {
    // SYN+FIN+PSH+URG to a closed port, answered by RST+ACK (Linux's
    // tcp_v4_send_reset), then a whole connection: no handshake failure,
    // and `--fail-on warning` passes.
    let mut p = Pcap::new();
    p.tcp(0, (CLIENT.0, 50000), SERVER, "SFPU", 7, 0, &[], 1)
        .tcp(100, SERVER, (CLIENT.0, 50000), "RA", 0, 8, &[], 0);
    whole_connection(&mut p, 1000, 40000);
    let a = p.analyze();
    let probe = &a.connections[0];
    assert_eq!(probe.ignored_frames.as_slice(), [1]);
    assert!(probe.handshake.syn_frames.is_empty());
    assert!(!kinds(&a).contains(&"handshake-failure"), "{:?}", kinds(&a));
    let file = temp_file("nmap-probe.pcap", p.bytes());
    let out = timewait(&["analyze", "--fail-on", "warning", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn an_out_of_window_rst_does_not_end_the_connection() {
    // A crafted RST far outside the client's window in the middle of a
    // connection that then closes normally: the close is the FIN exchange,
    // the client holds TIME_WAIT, nothing was aborted.
    let mut p = Pcap::new();
    let (c, s) = (CLIENT, SERVER);
    p.tcp(0, c, s, "S", 100, 0, &[], 1)
        .tcp(100, s, c, "SA", 500, 101, &[], 0)
        .tcp(200, c, s, "A", 101, 501, &[], 2)
        .tcp(300, c, s, "PA", 101, 501, b"GET", 3)
        .tcp(400, s, c, "RA", 0x8000_0000, 104, &[], 0)
        .tcp(500, s, c, "PA", 501, 104, b"OK", 1)
        .tcp(600, c, s, "FA", 104, 503, &[], 4)
        .tcp(700, s, c, "FA", 503, 105, &[], 2)
        .tcp(800, c, s, "A", 105, 504, &[], 5);
    let a = p.analyze();
    let r = &a.connections[0];
    assert_eq!(r.ignored_frames.as_slice(), [5]);
    assert_eq!(r.close.kind, timewait::track::CloseKind::Fin);
    assert_eq!(r.time_wait.holder, timewait::track::Closer::Client);
    assert!(!kinds(&a).contains(&"abortive-close"), "{:?}", kinds(&a));
}

#[test]
fn suricata_bug_76_crafted_rst_refuses_nothing() {
    // A fuzzed capture: frame 21 is an RST+PSH whose ACK acknowledges more
    // than the client (still in SYN_SENT: its SYN-ACK went to another
    // address) ever sent, and the connection goes on to frame 45.
    let Some(path) = corpus_file("suricata-verify/bug-76/input.pcap") else {
        return;
    };
    let a = analyze_file(&path);
    let c = &a.connections[1];
    assert!(c.ignored_frames.contains(&21), "{:?}", c.ignored_frames);
    assert_ne!(c.handshake.state, timewait::track::HandshakeState::Refused);
    assert!(!kinds(&a).contains(&"handshake-failure"), "{:?}", kinds(&a));
}

#[test]
fn a_capture_of_the_clients_direction_only_has_no_unanswered_syns() {
    // tcpdump on one fibre: the client's SYN, its ACK of the SYN-ACK the
    // capture never saw, a request, its FIN.
    let mut p = Pcap::new();
    let (c, s) = (CLIENT, SERVER);
    for i in 0..3u16 {
        let c = (c.0, c.1 + i);
        let t = u64::from(i) * 1_000_000;
        p.tcp(t, c, s, "S", 100, 0, &[], 1)
            .tcp(t + 900, c, s, "A", 101, 501, &[], 2)
            .tcp(t + 1000, c, s, "PA", 101, 501, b"GET", 3)
            .tcp(t + 5000, c, s, "FA", 104, 510, &[], 4);
    }
    let a = p.analyze();
    assert_eq!(a.summary.one_way_connections, 3);
    assert_eq!(a.summary.by_handshake["complete"], 3);
    assert!(a.connections.iter().all(|c| c.handshake.synack_unseen));
    assert!(!kinds(&a).contains(&"handshake-failure"), "{:?}", kinds(&a));
    let file = temp_file("one-way.pcap", p.bytes());
    let text = stdout(&timewait(&["analyze", file.to_str().unwrap()])).replace('\n', " ");
    assert!(
        text.contains("3 connections captured in one direction only"),
        "{text}"
    );
}

#[test]
fn zeek_client_side_half_duplex_has_no_unanswered_syns() {
    let Some(path) = corpus_file("zeek/ssh/ssh.client-side-half-duplex.pcap") else {
        return;
    };
    let a = analyze_file(&path);
    assert_eq!(a.summary.by_handshake["syn_only"], 0);
    assert_eq!(a.summary.one_way_connections, a.summary.connections);
    assert!(!kinds(&a).contains(&"handshake-failure"), "{:?}", kinds(&a));
}

#[test]
fn a_capture_that_starts_at_the_fin_says_what_it_cannot_know() {
    let mut p = Pcap::new();
    let (c, s) = (CLIENT, SERVER);
    p.tcp(0, s, c, "FA", 900, 200, &[], 1)
        .tcp(60, c, s, "A", 200, 901, &[], 2)
        .tcp(460_000, c, s, "FA", 200, 901, &[], 3)
        .tcp(540_000, s, c, "A", 901, 201, &[], 4);
    let a = p.analyze();
    assert_eq!(a.summary.started_before_capture, 1);
    let r = &a.connections[0];
    assert_eq!(r.close.active_closer, timewait::track::Closer::Server);
    assert_eq!(r.close.idle_before_fin_s, None);
    let file = temp_file("teardown.pcap", p.bytes());
    let text = stdout(&timewait(&["analyze", file.to_str().unwrap()])).replace('\n', " ");
    assert!(
        text.contains("1 connection was already open when the capture began"),
        "{text}"
    );
}

#[test]
fn timestamps_that_jump_by_years_are_reported_as_damage() {
    // A whole connection whose frames 3 and 6 carry timestamps years off
    // (one forward, one back), then a quiet four days and one more
    // connection: the quiet gap is capture time, the jumps are not.
    let year = 365 * 86_400 * 1_000_000u64;
    let mut p = Pcap::new();
    let (c, s) = (CLIENT, SERVER);
    let base = 10 * year;
    p.tcp(base, c, s, "S", 100, 0, &[], 1)
        .tcp(base + 100, s, c, "SA", 500, 101, &[], 0)
        .tcp(base + 3 * year, c, s, "A", 101, 501, &[], 2)
        .tcp(base + 300, c, s, "PA", 101, 501, b"GET", 3)
        .tcp(base + 400, s, c, "PA", 501, 104, b"OK", 1)
        .tcp(base - 2 * year, c, s, "FA", 104, 503, &[], 4)
        .tcp(base + 600, s, c, "FA", 503, 105, &[], 2)
        .tcp(base + 700, c, s, "A", 105, 504, &[], 5);
    let days = 4 * 86_400 * 1_000_000u64;
    whole_connection(&mut p, base + days, 40001);
    let a = p.analyze();
    let cap = &a.captures[0];
    assert_eq!(cap.time_jumps, 4);
    assert_eq!(cap.time_jump_frames, [3, 4, 6, 7]);
    assert!(
        (cap.captured_s - 4.0 * 86_400.0).abs() < 0.01,
        "{}",
        cap.captured_s
    );
    assert_eq!(a.summary.time_jumps, 4);
    let file = temp_file("time-jumps.pcap", p.bytes());
    let text = stdout(&timewait(&["analyze", file.to_str().unwrap()])).replace('\n', " ");
    assert!(
        text.contains("its timestamps jump 4 times (frame 3, 4, 6, 7)"),
        "{text}"
    );
    // Without jumps, the capture time is the span.
    let mut p = Pcap::new();
    whole_connection(&mut p, 0, 40000);
    whole_connection(&mut p, 7_200_000_000, 40001);
    let a = p.analyze();
    assert_eq!(a.summary.time_jumps, 0);
    assert!((a.summary.captured_s - a.summary.duration_s).abs() < 1e-6);
}

/// Findings as (kind, severity, count), sorted, and the connection count.
fn outcome(a: &Analysis) -> (Vec<(String, String, u64)>, u64) {
    let mut f: Vec<(String, String, u64)> = a
        .findings
        .iter()
        .map(|f| (f.kind.to_string(), f.severity.to_string(), f.count))
        .collect();
    f.sort();
    (f, a.summary.connections)
}

fn run_files(inputs: &[(&str, &[u8])]) -> Analysis {
    let mut p =
        timewait::analysis::Pipeline::new(Default::default(), timewait::analysis::Retain::All);
    for (name, bytes) in inputs {
        p.feed(name, *bytes).expect("readable");
    }
    p.finish()
}

#[test]
fn the_same_file_twice_finds_what_it_finds_once() {
    let mut compared = 0;
    for (stem, path) in fixtures_with_truth() {
        let bytes = std::fs::read(&path).unwrap();
        let once = run_files(&[("a", &bytes)]);
        let twice = run_files(&[("a", &bytes), ("a", &bytes)]);
        assert_eq!(outcome(&twice), outcome(&once), "{stem}");
        assert_eq!(
            twice.captures[1].overlap_skipped, once.summary.packets,
            "{stem}"
        );
        assert_eq!(twice.captures[1].tcp_packets, 0, "{stem}");
        compared += 1;
    }
    assert!(compared >= 20, "{compared}");
}

/// The records of a classic pcap: (header, records as bytes).
fn pcap_records(bytes: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(&bytes[at..at + 16 + caplen]);
        at += 16 + caplen;
    }
    (&bytes[..24], out)
}

#[test]
fn overlapping_captures_are_read_as_one_timeline() {
    // client-close.pcap cut into frames 1-30 and 20-45 (rotated files
    // written with an overlap): the same findings and connections as the
    // whole file, and frames 20-30 of the second file skipped.
    let whole = std::fs::read(fixture("client-close.pcap")).unwrap();
    let (header, records) = pcap_records(&whole);
    assert_eq!(records.len(), 45);
    let part = |r: std::ops::Range<usize>| {
        let mut b = header.to_vec();
        records[r].iter().for_each(|x| b.extend_from_slice(x));
        b
    };
    let (first, second) = (part(0..30), part(19..45));
    let once = run_files(&[("whole", &whole)]);
    let split = run_files(&[("first", &first), ("second", &second)]);
    assert_eq!(outcome(&split), outcome(&once));
    assert_eq!(split.captures[1].overlap_skipped, 11);
    let ids = |a: &Analysis| -> Vec<(u32, u64)> {
        a.connections
            .iter()
            .map(|c| {
                (
                    c.id.0,
                    c.handshake.syn_retransmits as u64 + u64::from(c.close.fin_retransmits),
                )
            })
            .collect()
    };
    assert_eq!(ids(&split), ids(&once));
}

#[test]
fn a_capture_damaged_at_its_first_record_has_no_ok_verdict() {
    // A pcap header, then a record that declares 2 GB.
    let mut bytes = pcap_header(65535, 1);
    for v in [1_700_000_000u32, 0, 0x7fff_ffff, 0x7fff_ffff] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(&[0u8; 40]);
    let file = temp_file("damaged-first.pcap", &bytes);
    let out = timewait(&["analyze", file.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.starts_with("NOTHING ANALYZED: "), "{text}");
    assert!(!text.contains("no problems found"), "{text}");
    assert_eq!(out.status.code(), Some(2));
    let md = stdout(&timewait(&[
        "analyze",
        "--format",
        "markdown",
        file.to_str().unwrap(),
    ]));
    assert!(md.contains("NOTHING ANALYZED"), "{md}");
    // An empty but sound capture is still OK: nothing was wrong with it.
    let empty = temp_file("empty.pcap", &pcap_header(65535, 1));
    let text = stdout(&timewait(&["analyze", empty.to_str().unwrap()]));
    assert!(text.starts_with("OK"), "{text}");
}
