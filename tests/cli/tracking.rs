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
