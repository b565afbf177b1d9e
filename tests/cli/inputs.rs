//! Reading: formats, standard input, damaged and hostile files, exit codes.

use crate::support::*;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn not_a_capture_is_a_one_line_error_with_exit_2() {
    let p = temp_file("notes.pcap", b"this is a text file, not a capture\n");
    let o = timewait(&["analyze", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("notes.pcap") && err.contains("not a pcap or pcapng file"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn empty_missing_and_directory_inputs_exit_2_naming_the_file() {
    let empty = temp_file("empty.pcap", b"");
    let dir = std::env::temp_dir();
    for (path, words) in [
        (empty.to_str().unwrap(), "empty"),
        ("/nonexistent/dump.pcap", "cannot open"),
        (dir.to_str().unwrap(), "directory"),
    ] {
        let o = timewait(&["analyze", path]);
        assert_eq!(o.status.code(), Some(2), "{path}");
        let err = stderr(&o);
        assert!(err.contains(path) && err.contains(words), "{path}: {err}");
    }
}

#[test]
fn absurd_record_length_reports_what_came_before_and_exits_2() {
    // A good fixture, then a record header claiming 4 GiB.
    let mut bytes = std::fs::read(fixture("client-close.pcap")).unwrap();
    let frames = tshark_truth("client-close").len();
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    bytes.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    bytes.extend_from_slice(&[0u8; 64]);
    let p = temp_file("absurd.pcap", &bytes);
    let o = timewait(&["analyze", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("record {}", frames + 1)) && err.contains("4294967280"),
        "{err}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["summary"]["connections"], 3);
    assert_eq!(json["captures"][0]["packets"], frames as u64);
}

#[test]
fn absurd_snaplen_in_the_header_does_not_stop_good_records() {
    // The snap length is advice to readers; records are judged on their own.
    let mut bytes = pcap_header(u32::MAX, 1);
    let good = std::fs::read(fixture("client-close.pcap")).unwrap();
    bytes.extend_from_slice(&good[24..]);
    let p = temp_file("snaplen.pcap", &bytes);
    let o = timewait(&["conns", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
}

#[test]
fn header_only_capture_has_no_connections() {
    let p = temp_file("header-only.pcap", &pcap_header(65535, 1));
    let o = timewait(&["analyze", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["summary"]["connections"], 0);
    assert_eq!(json["captures"][0]["packets"], 0);
}

#[test]
fn truncated_capture_reports_every_complete_record_and_exits_0() {
    let truth = tshark_truth("truncated");
    let o = timewait(&[
        "analyze",
        "--format",
        "json",
        fixture("truncated.pcap").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    let last = truth.len();
    assert!(
        err.contains(&format!("record {}", last + 1)) && err.contains(&format!("frames 1-{last}")),
        "{err}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["captures"][0]["truncated"], true);
    assert_eq!(json["captures"][0]["damage"]["after_frame"], last as u64);
    assert_eq!(json["captures"][0]["packets"], last as u64);
}

#[test]
fn standard_input_reads_the_same_as_the_file() {
    let path = fixture("server-close.pcap");
    let mut child = Command::new(env!("CARGO_BIN_EXE_timewait"))
        .args(["conns", "--format", "ndjson", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        // Dribble the header in tiny writes, as a pipe from tcpdump may.
        for chunk in bytes.chunks(7) {
            stdin.write_all(chunk).unwrap();
        }
    }
    let piped = child.wait_with_output().unwrap();
    assert_eq!(piped.status.code(), Some(0));
    let direct = timewait(&["conns", "--format", "ndjson", path.to_str().unwrap()]);
    assert_eq!(stdout(&piped), stdout(&direct));
    assert_eq!(stdout(&direct).lines().count(), 3);
}

#[test]
fn analyze_is_the_default_command() {
    let path = fixture("client-close.pcap");
    let a = timewait(&[path.to_str().unwrap()]);
    let b = timewait(&["analyze", path.to_str().unwrap()]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(stdout(&a), stdout(&b));
    let text = stdout(&a);
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().starts_with("OK: no problems found"),
        "{text}"
    );
    assert!(
        lines.next().unwrap().starts_with("3 connections in "),
        "{text}"
    );
}

#[test]
fn several_files_analyze_the_readable_ones_and_exit_2() {
    let good = fixture("client-close.pcap");
    let o = timewait(&[
        "analyze",
        "--format",
        "json",
        good.to_str().unwrap(),
        "/nonexistent/second.pcap",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/second.pcap"));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["summary"]["connections"], 3);
    assert_eq!(json["captures"].as_array().unwrap().len(), 2);
    assert!(json["captures"][1]["error"].is_string());
    // Programs read the kind, not the message.
    assert_eq!(json["captures"][1]["error_kind"], "open");
    assert!(json["captures"][0]["error_kind"].is_null());
    let text = temp_file("notes2.pcap", b"this is a text file, not a capture\n");
    let o = timewait(&[
        "analyze",
        "--format",
        "json",
        good.to_str().unwrap(),
        text.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kinds: Vec<&serde_json::Value> = json["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["error_kind"])
        .collect();
    assert!(
        kinds.contains(&&serde_json::json!("not_a_capture")),
        "{kinds:?}"
    );
}

#[test]
fn every_format_fixture_reads_with_the_right_link_type() {
    for (stem, format, link) in [
        ("client-close", "pcap", "ether"),
        ("nanosecond", "pcap_nanosecond", "ether"),
        ("big-endian", "pcap", "ether"),
        ("pcapng-multi", "pcapng", "ether"),
        ("any-sll", "pcap", "linux-sll"),
        ("any-sll2", "pcap", "linux-sll2"),
        ("vlan", "pcap", "ether"),
        ("ipv6", "pcap", "ether"),
    ] {
        let path = crate::support::fixtures_with_truth()
            .into_iter()
            .find(|(s, _)| s == stem)
            .unwrap_or_else(|| panic!("fixture {stem}"))
            .1;
        let a = analyze_file(&path);
        let cap = &a.captures[0];
        assert_eq!(
            serde_json::to_value(cap.format).unwrap(),
            serde_json::json!(format),
            "{stem}"
        );
        assert!(
            cap.link_types.iter().any(|l| l.link_type.name() == link),
            "{stem}: {:?}",
            cap.link_types
        );
        assert!(
            cap.skipped.is_empty() || stem == "pcapng-multi",
            "{stem}: {:?}",
            cap.skipped
        );
        assert!(!a.connections.is_empty(), "{stem}");
    }
    let be = analyze_file(&fixture("big-endian.pcap"));
    assert!(be.captures[0].big_endian);
}

/// Splits a little-endian µs pcap after `n` records: (first part, rest).
fn split_pcap(bytes: &[u8], n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut at = 24;
    for _ in 0..n {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    let mut first = bytes[..at].to_vec();
    let mut rest = bytes[..24].to_vec();
    rest.extend_from_slice(&bytes[at..]);
    first.shrink_to_fit();
    (first, rest)
}

#[test]
fn rotated_files_are_one_timeline_in_time_order() {
    let whole = std::fs::read(fixture("client-close.pcap")).unwrap();
    let (early, late) = split_pcap(&whole, 13);
    // Names that sort the wrong way round, as tcpdump -C makes them.
    let a = temp_file("dump.pcap10", &late);
    let b = temp_file("dump.pcap2", &early);
    let o = timewait(&[
        "conns",
        "--format",
        "json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("order of their first packet"),
        "{}",
        stderr(&o)
    );
    let split: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let one = timewait(&[
        "conns",
        "--format",
        "json",
        fixture("client-close.pcap").to_str().unwrap(),
    ]);
    let one: serde_json::Value = serde_json::from_str(&stdout(&one)).unwrap();
    let split = split.as_array().unwrap();
    assert_eq!(split.len(), 3);
    for (s, o) in split.iter().zip(one.as_array().unwrap()) {
        for key in ["id", "client", "server", "start", "end", "time_wait"] {
            assert_eq!(s[key], o[key], "{key}");
        }
        assert_eq!(s["close"]["kind"], o["close"]["kind"]);
        assert_eq!(s["close"]["active_closer"], o["close"]["active_closer"]);
    }
    // Connection 0 lives in the file read first (the early one), frames 1-13;
    // the others in the second file, numbered from 1 again.
    assert_eq!(split[0]["capture"], 0);
    assert_eq!(split[1]["capture"], 1);
    assert_eq!(split[1]["first_frame"], 1);
}

#[test]
fn gzip_and_zstd_captures_read_like_the_plain_file() {
    use std::io::Write as _;
    let plain = std::fs::read(fixture("server-close.pcap")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = temp_file("compressed.pcap.gz", &gz.finish().unwrap());
    // The name says nothing: the magic decides.
    let zst = temp_file("compressed.bin", &zstd::encode_all(&plain[..], 3).unwrap());
    let want = stdout(&timewait(&[
        "conns",
        "--format",
        "ndjson",
        fixture("server-close.pcap").to_str().unwrap(),
    ]));
    assert_eq!(want.lines().count(), 3);
    for p in [&gz, &zst] {
        let o = timewait(&["conns", "--format", "ndjson", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), want, "{}", p.display());
    }
}
