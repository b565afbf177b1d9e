//! Display filters: what tshark selected with each finding's filter
//! (fixtures/NAME.filters.tsv, made by fixtures/check-filters.sh) against
//! the filters of this build and the findings' evidence, without tshark;
//! and filters over several files.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use timewait::detect::{FilterScope, Finding, MAX_FILTER_LEN};

const RERUN: &str = "re-run `cargo build --release && bash fixtures/check-filters.sh` \
                     (needs tshark 4) and commit the .filters.tsv files";

/// One row of `NAME.filters.tsv`.
#[derive(Debug)]
struct Stored {
    kind: String,
    selects: String,
    filter: String,
    frames: BTreeSet<u64>,
}

fn stored(path: &Path) -> Vec<Stored> {
    let text = std::fs::read_to_string(path).expect("filters file");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("kind\tselects\tfilter\tframes"),
        "{}",
        path.display()
    );
    lines
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 4, "{}: {l}", path.display());
            Stored {
                kind: c[0].to_string(),
                selects: c[1].to_string(),
                filter: c[2].to_string(),
                frames: c[3]
                    .split_whitespace()
                    .map(|f| f.parse().expect("frame number"))
                    .collect(),
            }
        })
        .collect()
}

/// Every capture in the fixtures folder, by stem.
fn all_captures() -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = name
            .strip_suffix(".pcapng")
            .or_else(|| name.strip_suffix(".pcap"))
        {
            out.push((stem.to_string(), path));
        }
    }
    out.sort();
    out
}

fn scope_name(s: FilterScope) -> String {
    serde_json::to_value(s)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// The values of a `FIELD in {a, b..c}` filter.
fn set_values(filter: &str, field: &str) -> Option<BTreeSet<u64>> {
    let inner = filter
        .strip_prefix(&format!("{field} in {{"))?
        .strip_suffix('}')?;
    let mut out = BTreeSet::new();
    for e in inner.split(", ") {
        match e.split_once("..") {
            Some((a, b)) => out.extend(a.parse::<u64>().ok()?..=b.parse::<u64>().ok()?),
            None => {
                out.insert(e.parse().ok()?);
            }
        }
    }
    Some(out)
}

/// What tshark must have selected with `f`'s filter, given the frames of
/// each stream (from NAME.tshark.tsv).
fn check_selection(
    stem: &str,
    f: &Finding,
    selected: &BTreeSet<u64>,
    frames_of_stream: &BTreeMap<u32, BTreeSet<u64>>,
) {
    let evidence: BTreeSet<u64> = f.frames.iter().copied().collect();
    let of_connections: BTreeSet<u64> = f
        .connections
        .iter()
        .flat_map(|c| frames_of_stream.get(&c.0).into_iter().flatten().copied())
        .collect();
    let what = format!("{stem}: {} `{}`", f.kind, f.display_filter);
    match f.display_filter_selects {
        // Exactly the evidence frames.
        FilterScope::Frames => assert_eq!(selected, &evidence, "{what}"),
        // Exactly every frame of the evidence connections (tcp.stream).
        FilterScope::Connections => {
            assert_eq!(selected, &of_connections, "{what}");
            assert!(evidence.is_subset(selected), "{what}");
        }
        // The first evidence frames (or connections): some, and nothing else.
        FilterScope::First => {
            assert!(!selected.is_empty(), "{what}");
            assert!(
                selected.is_subset(&evidence) || selected.is_subset(&of_connections),
                "{what}"
            );
            assert!(f.display_filter_note.is_some(), "{what}");
        }
        // Broader: a frame of every evidence row, and more.
        FilterScope::Broad => {
            for row in &f.evidence {
                assert!(
                    row.frames.iter().any(|fr| selected.contains(fr)),
                    "{what}: row of connection {} not shown",
                    row.connection
                );
            }
            assert!(f.display_filter_note.is_some(), "{what}");
        }
    }
}

#[test]
fn every_fixture_has_its_filters_checked_by_tshark() {
    let missing: Vec<String> = all_captures()
        .into_iter()
        .filter(|(stem, _)| !fixture(&format!("{stem}.filters.tsv")).exists())
        .map(|(stem, _)| stem)
        .collect();
    assert!(
        missing.is_empty(),
        "fixtures without a .filters.tsv: {missing:?}; {RERUN}"
    );
}

#[test]
fn stored_filters_are_this_builds_and_tshark_selected_exactly_the_evidence() {
    let mut rows = 0;
    let mut scopes = BTreeSet::new();
    for (stem, path) in all_captures() {
        let tsv = fixture(&format!("{stem}.filters.tsv"));
        if !tsv.exists() {
            continue; // the test above names it
        }
        let stored = stored(&tsv);
        let a = analyze_file(&path);
        let now: Vec<(String, String, String)> = a
            .findings
            .iter()
            .map(|f| {
                (
                    f.kind.to_string(),
                    scope_name(f.display_filter_selects),
                    f.display_filter.clone(),
                )
            })
            .collect();
        let then: Vec<(String, String, String)> = stored
            .iter()
            .map(|s| (s.kind.clone(), s.selects.clone(), s.filter.clone()))
            .collect();
        assert_eq!(now, then, "{stem}: the filters changed; {RERUN}");
        let mut frames_of_stream: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
        for r in tshark_truth(&stem) {
            if let Some(s) = r.stream {
                frames_of_stream.entry(s).or_default().insert(r.frame);
            }
        }
        for (f, s) in a.findings.iter().zip(&stored) {
            assert!(f.display_filter.len() <= MAX_FILTER_LEN, "{stem}");
            check_selection(&stem, f, &s.frames, &frames_of_stream);
            scopes.insert(s.selects.clone());
            rows += 1;
        }
    }
    // The committed fixtures exercise exact frames (with ranges), whole
    // connections (churn-redis) and a broader filter (refused-many): the
    // checks above are not vacuous.
    if std::env::var_os("TIMEWAIT_FIXTURES").is_none() {
        assert!(rows >= 20, "{rows} filters checked");
        for scope in ["frames", "connections", "broad"] {
            assert!(scopes.contains(scope), "{scope} not in {scopes:?}");
        }
    }
}

/// Splits a little-endian µs pcap after `n` records: (first part, rest).
fn split_pcap(bytes: &[u8], n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut at = 24;
    for _ in 0..n {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    let first = bytes[..at].to_vec();
    let mut rest = bytes[..24].to_vec();
    rest.extend_from_slice(&bytes[at..]);
    (first, rest)
}

#[test]
fn several_files_get_one_filter_each_and_every_frame_names_its_file() {
    // finrst-tw-gone cut after frame 30: stream 2 (frames 22-32, its FIN
    // retransmitted into an RST at 29-32) runs on into the second file.
    const CUT: u64 = 30;
    let whole = std::fs::read(fixture("finrst-tw-gone.pcap")).unwrap();
    let (early, late) = split_pcap(&whole, CUT as usize);
    let a = temp_file("filters-split.pcap0", &early);
    let b = temp_file("filters-split.pcap1", &late);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let one: serde_json::Value = serde_json::from_str(&stdout(&timewait(&[
        "analyze",
        "--format",
        "json",
        fixture("finrst-tw-gone.pcap").to_str().unwrap(),
    ])))
    .unwrap();
    let o = timewait(&["analyze", "--format", "json", a, b]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let two: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let packets: Vec<u64> = two["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["packets"].as_u64().unwrap())
        .collect();
    assert_eq!(packets[0], CUT);
    // (file, frame) back to the frame number of the whole capture.
    let whole_frame = |file: u64, frame: u64| if file == 0 { frame } else { frame + CUT };
    let findings_one = one["findings"].as_array().unwrap();
    let findings_two = two["findings"].as_array().unwrap();
    assert_eq!(findings_one.len(), findings_two.len());
    let mut spanning_rows = 0;
    for (f1, f2) in findings_one.iter().zip(findings_two) {
        assert_eq!(f1["kind"], f2["kind"]);
        let kind = f2["kind"].as_str().unwrap();
        // The frames and their files are the single file's frames.
        let frames: Vec<u64> = f2["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let files: Vec<u64> = f2["frame_captures"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind}: no frame_captures"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let mapped: Vec<u64> = files
            .iter()
            .zip(&frames)
            .map(|(f, n)| whole_frame(*f, *n))
            .collect();
        assert_eq!(serde_json::json!(mapped), f1["frames"], "{kind}");
        // One filter per file, frame numbers of that file only, never a
        // tcp.stream (tshark counts streams per file); together exactly
        // the single file's evidence.
        let mut union = BTreeSet::new();
        for ff in f2["display_filters"].as_array().unwrap() {
            let file = ff["capture"].as_u64().unwrap();
            let filter = ff["display_filter"].as_str().unwrap();
            assert_eq!(ff["selects"], "frames", "{kind}: {filter}");
            assert!(!filter.contains("tcp.stream"), "{kind}: {filter}");
            let values = set_values(filter, "frame.number").expect(filter);
            for v in &values {
                assert!(*v >= 1 && *v <= packets[file as usize], "{kind}: {filter}");
                union.insert(whole_frame(file, *v));
            }
        }
        let single: BTreeSet<u64> =
            set_values(f1["display_filter"].as_str().unwrap(), "frame.number")
                .expect("single-file filter lists frames");
        assert_eq!(union, single, "{kind}");
        // Evidence rows name their file; a row across the cut names both.
        for (r1, r2) in f1["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .zip(f2["evidence"].as_array().unwrap())
        {
            let frames: Vec<u64> = r2["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let first_file = r2["capture"].as_u64().expect("row names its file");
            let files: Vec<u64> = match r2.get("frame_captures") {
                Some(v) => {
                    spanning_rows += 1;
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap())
                        .collect()
                }
                None => vec![first_file; frames.len()],
            };
            assert_eq!(files[0], first_file);
            let mapped: Vec<u64> = files
                .iter()
                .zip(&frames)
                .map(|(f, n)| whole_frame(*f, *n))
                .collect();
            assert_eq!(serde_json::json!(mapped), r1["frames"], "{kind}");
        }
    }
    assert!(spanning_rows >= 1, "the cut runs through an evidence row");
    // The single file's JSON has none of the per-file fields.
    assert!(findings_one[0].get("display_filters").is_none());
    assert!(findings_one[0]["evidence"][0].get("capture").is_none());

    // Text and Markdown print file:frame and one filter per file.
    let text = stdout(&timewait(&["analyze", a, b]));
    assert!(
        text.contains("frames 0:29 0:30 1:1 1:2 "),
        "evidence across the cut:\n{text}"
    );
    assert!(text.contains(&format!("filter for file 0 ({a}): frame.number in {{")));
    assert!(text.contains(&format!("filter for file 1 ({b}): frame.number in {{")));
    let md = stdout(&timewait(&["analyze", "--format", "markdown", a, b]));
    assert!(md.contains("| 0:29 0:30 1:1 1:2 |"), "{md}");
    assert!(md.contains(&format!("Wireshark display filter for file 1 ({b}):")));
    assert!(md.contains("frames are `file:frame`"), "{md}");

    // `show` names the file of every frame; `conns` the two files of a
    // connection that spans them.
    let show = stdout(&timewait(&["show", a, b, "--conn", "2"]));
    assert!(show.contains(&format!("frames are file:frame; files 0 = {a}, 1 = {b}")));
    let labels: Vec<&str> = show
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.contains(':') && w.chars().next().unwrap().is_ascii_digit())
        .collect();
    assert_eq!(labels.first(), Some(&"0:22"), "{show}");
    assert_eq!(labels.last(), Some(&"1:2"), "{show}");
    let conns = stdout(&timewait(&["conns", a, b]));
    assert!(conns.contains("0:22-1:2"), "{conns}");
    // The JSON connection keeps Wireshark's numbers of its files.
    let c: serde_json::Value =
        serde_json::from_str(&stdout(&timewait(&["conns", "--format", "json", a, b]))).unwrap();
    assert_eq!(c[2]["capture"], 0);
    assert_eq!(c[2]["first_frame"], 22);
    assert_eq!(c[2]["last_frame"], 2);
}
