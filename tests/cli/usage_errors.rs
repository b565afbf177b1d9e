//! Errors a person makes on the command line: each is said once, and
//! before the work it would spoil.

use crate::support::*;
use std::time::{Duration, Instant};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("timewait-usage-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_malformed_baseline_is_refused_once_before_any_report() {
    let bad = scratch("baseline").join("bad.json");
    std::fs::write(&bad, "{\"schema\": ").unwrap();
    let f = fixture("finrst-tw-gone.pcap");
    let o = timewait(&[
        "analyze",
        f.to_str().unwrap(),
        "--baseline",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "", "no report before the error");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--baseline") && err.contains("not a timewait JSON report"),
        "{err}"
    );
    assert_eq!(err.matches("EOF while parsing").count(), 1, "{err}");
}

#[test]
fn a_missing_second_file_is_named_apart_and_the_verdict_says_the_answer_is_partial() {
    let good = fixture("client-close.pcap");
    let o = timewait(&[
        "analyze",
        good.to_str().unwrap(),
        "no-such-file.pcap",
        "--width",
        "400",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("INCOMPLETE: no problems found; but 1 of 2 inputs could not be read"),
        "{first}"
    );
    let facts = out.lines().nth(1).unwrap();
    assert!(
        facts.contains(&format!("in {} (", good.display()))
            && facts.contains("not read: no-such-file.pcap"),
        "{facts}"
    );
    // One readable file: the verdict is the plain one.
    let o = timewait(&["analyze", good.to_str().unwrap()]);
    assert!(stdout(&o).starts_with("OK: no problems found\n"));
}

#[test]
fn an_unwritable_svg_path_fails_before_the_capture_is_read() {
    let f = fixture("finrst-tw-gone.pcap");
    let o = timewait(&[
        "timeline",
        f.to_str().unwrap(),
        "--svg",
        "/nonexistent-dir/tw.svg",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "", "the chart was not drawn: nothing was read");
    assert!(
        stderr(&o).contains("--svg /nonexistent-dir/tw.svg"),
        "{}",
        stderr(&o)
    );
    // An unreadable capture leaves no empty picture behind.
    let svg = scratch("svg").join("tw.svg");
    let o = timewait(&[
        "timeline",
        "no-such-file.pcap",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!svg.exists());
}

#[test]
fn nonsense_time_wait_and_port_range_are_refused_with_the_reason() {
    let f = fixture("client-close.pcap");
    let f = f.to_str().unwrap();
    for value in ["-1", "0", "-0.5", "inf", "NaN"] {
        let o = timewait(&["analyze", f, "--time-wait", value]);
        assert_eq!(o.status.code(), Some(2), "{value}");
        let err = stderr(&o);
        assert!(!err.contains("-- "), "{value}: no `-- VALUE` tip: {err}");
        assert!(err.contains("positive number of seconds"), "{value}: {err}");
    }
    let o = timewait(&["analyze", f, "--time-wait", "0.5"]);
    assert_eq!(o.status.code(), Some(0));
    for value in ["0-0", "0-100"] {
        let o = timewait(&["analyze", f, "--port-range", value]);
        assert_eq!(o.status.code(), Some(2), "{value}");
        assert!(
            stderr(&o).contains("port 0 is never an ephemeral port"),
            "{}",
            stderr(&o)
        );
    }
    let o = timewait(&["analyze", f, "--port-range", "1-1"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn reading_standard_input_from_a_terminal_says_so_instead_of_waiting() {
    // A pseudo-terminal as standard input, as when a person types the
    // command in a shell without a pipe.
    let (mut master, mut slave) = (0, 0);
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    use std::os::fd::FromRawFd;
    let tty = unsafe { std::fs::File::from_raw_fd(slave) };
    let _master = unsafe { std::fs::File::from_raw_fd(master) };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_timewait"))
        .args(["analyze", "-"])
        .stdin(tty)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("timewait analyze - waited on a terminal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("standard input, which is a terminal"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn handshake_states_are_spelled_one_way_in_tables_json_and_the_state_filter() {
    let f = fixture("syn-drop.pcap");
    let f = f.to_str().unwrap();
    let summary = stdout(&timewait(&["analyze", f]));
    assert!(summary.contains("syn_only 1"), "{summary}");
    let json = stdout(&timewait(&["conns", f, "--format", "json"]));
    assert!(json.contains("\"state\": \"syn_only\""), "{json}");
    // The spelling the table printed is the one the filter takes (and
    // lists in its help); the dashed one is still accepted.
    for spelling in ["syn_only", "syn-only"] {
        let o = timewait(&["conns", f, "--state", spelling, "--format", "json"]);
        assert_eq!(o.status.code(), Some(0), "{spelling}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let states: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["handshake"]["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["syn_only"], "{spelling}");
    }
    let help = stdout(&timewait(&["conns", "--help"]));
    assert!(
        help.contains("syn_only") && !help.contains("syn-only"),
        "{help}"
    );
}

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn help_man_and_docs_tell_what_the_program_does() {
    // Compressed input works (tested in inputs.rs): every place that lists
    // what is read says so.
    let help = stdout(&timewait(&["analyze", "--help"]));
    assert!(help.contains("gzip") && help.contains("zstd"), "{help}");
    let man = stdout(&timewait(&["man"]));
    assert!(man.contains("gzip") && man.contains("zstd"));
    let readme = repo_file("README.md");
    let reads = &readme[readme.find("## What it reads").unwrap()..];
    let reads = &reads[..reads[3..].find("\n## ").unwrap()];
    assert!(reads.contains("gzip") && reads.contains("zstd"), "{reads}");
    // --width: what happens when not on a terminal is what the help says.
    assert!(help.contains("wraps at 100"), "{help}");
    let o = timewait(&["analyze", fixture("finrst-tw-gone.pcap").to_str().unwrap()]);
    let widest = stdout(&o)
        .lines()
        .filter(|l| !l.starts_with(['┌', '│', '╞', '├', '└']))
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(widest <= 100 && widest > 80, "prose wraps at 100: {widest}");
    // --color says which output it colours.
    assert!(
        help.contains("`show`: client and server") && help.contains("`timeline`: hosts"),
        "{help}"
    );
    assert!(
        help.contains("conns, JSON and Markdown are plain text"),
        "{help}"
    );
    // DuckDB: a simultaneous close leaves TIME_WAIT on both sides.
    let duck = repo_file("docs/duckdb.md");
    assert!(!duck.contains("IN ('client', 'server')"), "drops `both`");
    assert!(duck.contains("IN ('client', 'both')") && duck.contains("IN ('server', 'both')"));
    // The design note stands on its own.
    assert!(!repo_file("docs/design.md").contains("shared/DESIGN"));
    // json.md: the capture order and the one map whose keys vary.
    let json = repo_file("docs/json.md");
    assert!(json.contains("in the order of their first packet"));
    assert!(json.contains("`captures[].skipped` has a key only"));
}
