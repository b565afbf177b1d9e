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
