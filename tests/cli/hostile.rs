//! Hostile sizes: lengths that point past the end, lengths of 4 GiB,
//! snaplen 0, absurd option lengths, interface ids out of range, empty
//! records. Each gets a clear outcome: exit 0 with the damage reported,
//! or exit 2 with one line saying why; never a panic, and memory stays
//! bounded (the binary runs under a 512 MiB address-space limit).
//! The 4 GiB pcap record is in inputs.rs.

use crate::support::*;
use std::process::{Command, Output};

/// Writes `bytes` to a temporary file and runs `analyze --format json` on
/// it under `ulimit -v` (512 MiB).
fn analyze_bytes(name: &str, bytes: &[u8]) -> Output {
    let dir = std::env::temp_dir().join(format!("timewait-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 524288 && exec "$0" analyze --format json "$1""#)
        .arg(env!("CARGO_BIN_EXE_timewait"))
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("run timewait")
}

/// Exit 0 or 2 (never a signal or a panic), stderr at most one line
/// naming the file; the JSON report when there is one.
fn clear_outcome(name: &str, o: &Output) -> Option<serde_json::Value> {
    let err = stderr(o);
    assert!(
        matches!(o.status.code(), Some(0 | 2)),
        "{name}: {:?} {err}",
        o.status
    );
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert!(err.lines().count() <= 1, "{name}: {err}");
    // pcap-parser's parse errors print the remaining input; ours must not.
    assert!(err.len() < 400, "{name}: {} bytes of stderr", err.len());
    assert!(err.is_empty() || err.contains(name), "{name}: {err}");
    serde_json::from_str(&stdout(o)).ok()
}

// --- pcapng building blocks (little endian) ---

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out.extend_from_slice(&total.to_le_bytes());
    out
}

fn shb_with_options(options: &[u8]) -> Vec<u8> {
    let mut body = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
    body.extend_from_slice(&[0xff; 8]);
    body.extend_from_slice(options);
    block(0x0a0d_0d0a, &body)
}

fn shb() -> Vec<u8> {
    shb_with_options(&[])
}

fn idb_with_options(link: u16, options: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&link.to_le_bytes());
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&65535u32.to_le_bytes());
    body.extend_from_slice(options);
    block(1, &body)
}

fn idb() -> Vec<u8> {
    idb_with_options(1, &[])
}

fn epb(if_id: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&if_id.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&1_000_000u32.to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    block(6, &body)
}

/// The frames of a fixture as pcapng EPBs on interface 0 (a pcap fixture
/// re-wrapped): returns the blocks and the number of frames.
fn fixture_as_epbs(stem: &str) -> (Vec<u8>, u64) {
    let pcap = std::fs::read(fixture(&format!("{stem}.pcap"))).unwrap();
    let (mut off, mut out, mut n) = (24, Vec::new(), 0);
    while off + 16 <= pcap.len() {
        let cap = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        out.extend(epb(0, &pcap[off + 16..off + 16 + cap]));
        off += 16 + cap;
        n += 1;
    }
    (out, n)
}

fn good_pcapng() -> (Vec<u8>, u64) {
    let (epbs, n) = fixture_as_epbs("client-close");
    ([shb(), idb(), epbs].concat(), n)
}

fn pcap_record(data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&1u32.to_le_bytes());
    r.extend_from_slice(&0u32.to_le_bytes());
    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
    r.extend_from_slice(&orig_len.to_le_bytes());
    r.extend_from_slice(data);
    r
}

#[test]
fn pcapng_fixture_rewrapped_reads_like_the_pcap() {
    // The baseline of the tests below.
    let (bytes, n) = good_pcapng();
    let o = analyze_bytes("good.pcapng", &bytes);
    let json = clear_outcome("good.pcapng", &o).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json["captures"][0]["packets"], n);
    assert_eq!(json["summary"]["connections"], 3);
}

#[test]
fn pcapng_block_length_past_the_end_is_a_truncated_tail_with_exit_0() {
    let (mut bytes, n) = good_pcapng();
    // An EPB that claims 1000 bytes; the file ends 40 bytes into it.
    let mut last = epb(0, &[0u8; 976]);
    last.truncate(40);
    bytes.extend(last);
    let o = analyze_bytes("past-end.pcapng", &bytes);
    let json = clear_outcome("past-end.pcapng", &o).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cap = &json["captures"][0];
    assert_eq!(cap["packets"], n);
    assert_eq!(cap["damage"]["kind"], "truncated");
    assert_eq!(cap["damage"]["after_frame"], n);
    assert_eq!(json["summary"]["connections"], 3);
    assert!(
        stderr(&o).contains(&format!("frames 1-{n}")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pcapng_huge_block_length_is_damage_after_the_good_frames_with_exit_2() {
    for declared in [0xffff_fff0u32, 0x8000_0000, 64 << 20] {
        let (mut bytes, n) = good_pcapng();
        let mut bad = epb(0, &[0u8; 64]);
        bad[4..8].copy_from_slice(&declared.to_le_bytes());
        bytes.extend(bad);
        let o = analyze_bytes("huge-block.pcapng", &bytes);
        let json = clear_outcome("huge-block.pcapng", &o).unwrap();
        assert_eq!(o.status.code(), Some(2), "{declared}: {}", stderr(&o));
        let cap = &json["captures"][0];
        assert_eq!(cap["packets"], n, "{declared}");
        assert_eq!(cap["damage"]["kind"], "corrupt", "{declared}");
        assert_eq!(cap["damage"]["after_frame"], n, "{declared}");
        assert!(stderr(&o).contains(&declared.to_string()), "{}", stderr(&o));
        assert_eq!(json["summary"]["connections"], 3);
    }
}

#[test]
fn pcapng_block_length_smaller_than_a_block_is_corrupt_in_one_short_line() {
    // Lengths under the 12-byte minimum, and one not a multiple of 4, then
    // 1 MiB: pcap-parser's error for these printed the 1 MiB as a list of
    // numbers (3 MB of stderr and of JSON `damage.message`).
    for declared in [0u32, 4, 8, 13] {
        let (mut bytes, n) = good_pcapng();
        let mut bad = epb(0, &[0u8; 64]);
        bad[4..8].copy_from_slice(&declared.to_le_bytes());
        bytes.extend(bad);
        bytes.resize(bytes.len() + (1 << 20), 0);
        let o = analyze_bytes("tiny-block.pcapng", &bytes);
        let json = clear_outcome("tiny-block.pcapng", &o).unwrap();
        assert_eq!(o.status.code(), Some(2), "{declared}: {}", stderr(&o));
        let cap = &json["captures"][0];
        assert_eq!(cap["packets"], n, "{declared}");
        assert_eq!(cap["damage"]["kind"], "corrupt", "{declared}");
        assert_eq!(cap["damage"]["after_frame"], n, "{declared}");
        assert!(cap["damage"]["message"].as_str().unwrap().len() < 200);
        assert_eq!(json["summary"]["connections"], 3);
    }
}

#[test]
fn pcapng_captured_length_past_its_block_is_corrupt_not_truncated() {
    // An EPB whose captured length (200) overruns its own 96-byte block,
    // then good frames: small file (was "truncated", exit 0) and one past
    // the 4 MiB buffer (was "declares 96 bytes, more than the 4 MiB limit").
    let (epbs, n) = fixture_as_epbs("client-close");
    let mut bad = epb(0, &[0u8; 64]);
    bad[20..24].copy_from_slice(&200u32.to_le_bytes());
    for (name, copies) in [("overrun.pcapng", 1), ("overrun-large.pcapng", 1000)] {
        let mut bytes = [shb(), idb(), epbs.clone(), bad.clone()].concat();
        for _ in 0..copies {
            bytes.extend_from_slice(&epbs);
        }
        let o = analyze_bytes(name, &bytes);
        let json = clear_outcome(name, &o).unwrap();
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let cap = &json["captures"][0];
        assert_eq!(cap["packets"], n, "{name}");
        assert_eq!(cap["damage"]["kind"], "corrupt", "{name}");
        assert_eq!(cap["damage"]["after_frame"], n, "{name}");
        assert!(
            stderr(&o).contains("more data than its own length of 96 bytes"),
            "{name}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn pcap_snaplen_0_and_zero_length_records_are_read_and_skipped() {
    // snaplen 0 in the header (advice only), records of 0 captured bytes
    // (orig_len 0 and 60), then the fixture's records.
    let good = std::fs::read(fixture("client-close.pcap")).unwrap();
    let frames = tshark_truth("client-close").len() as u64;
    let mut bytes = pcap_header(0, 1);
    bytes.extend(pcap_record(&[], 0));
    bytes.extend(pcap_record(&[], 60));
    bytes.extend_from_slice(&good[24..]);
    bytes.extend(pcap_record(&[], 0));
    let o = analyze_bytes("snaplen0.pcap", &bytes);
    let json = clear_outcome("snaplen0.pcap", &o).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cap = &json["captures"][0];
    assert_eq!(cap["packets"], frames + 3);
    assert_eq!(cap["tcp_packets"], frames);
    assert!(cap["damage"].is_null());
    assert_eq!(json["summary"]["connections"], 3);
}

#[test]
fn pcapng_zero_length_packets_and_interface_id_out_of_range_are_skipped_frames() {
    let (epbs, n) = fixture_as_epbs("client-close");
    let bytes = [
        shb(),
        idb(),
        epb(0, &[]),
        epb(7, &[0u8; 60]),
        epb(u32::MAX, &[0u8; 60]),
        epbs,
        epb(0, &[]),
    ]
    .concat();
    let o = analyze_bytes("bad-ifid.pcapng", &bytes);
    let json = clear_outcome("bad-ifid.pcapng", &o).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cap = &json["captures"][0];
    assert_eq!(cap["packets"], n + 4);
    assert_eq!(cap["tcp_packets"], n);
    assert!(cap["damage"].is_null());
    assert_eq!(json["summary"]["connections"], 3);
}

#[test]
fn pcapng_absurd_option_lengths_get_a_clear_outcome() {
    // Option code 2 (shb_hardware / if_name) with a length far past the
    // block, 0xffff, and one that overruns by a single byte.
    let (epbs, n) = fixture_as_epbs("client-close");
    for (what, opt) in [
        ("huge", [2u8, 0, 0xff, 0xff, b'x', b'y', b'z', 0].to_vec()),
        (
            "off-by-one",
            [2u8, 0, 5, 0, b'x', b'y', b'z', b'w'].to_vec(),
        ),
        ("no-end", [9u8, 0, 1, 0, 6, 0, 0, 0, 2, 0].to_vec()),
    ] {
        for (where_, bytes) in [
            (
                "shb",
                [shb_with_options(&opt), idb(), epbs.clone()].concat(),
            ),
            (
                "idb",
                [shb(), idb_with_options(1, &opt), epbs.clone()].concat(),
            ),
        ] {
            let name = format!("{what}-{where_}-option.pcapng");
            let o = analyze_bytes(&name, &bytes);
            // Options are advice: pcap-parser drops a malformed option
            // list and the block's packets still count.
            let json = clear_outcome(&name, &o).unwrap();
            assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
            assert_eq!(json["captures"][0]["packets"], n, "{name}");
            assert!(json["captures"][0]["damage"].is_null(), "{name}");
            assert_eq!(json["summary"]["connections"], 3, "{name}");
        }
    }
}
