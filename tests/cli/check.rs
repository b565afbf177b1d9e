//! `timewait check`: a folder of sample captures against their baselines,
//! one result (and one JUnit test case) per capture.

use crate::support::*;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use std::path::{Path, PathBuf};

/// A fresh folder for one test, with `captures/` made.
fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("timewait-check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("captures")).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn junit(path: &Path) -> Report {
    Report::deserialize_from_str(&std::fs::read_to_string(path).unwrap()).expect("JUnit XML")
}

#[test]
fn check_passes_unchanged_captures_and_fails_the_one_with_a_new_finding() {
    let dir = workdir("regress");
    let caps = dir.join("captures");
    let base = dir.join("baselines");
    std::fs::copy(fixture("client-close.pcap"), caps.join("a.pcap")).unwrap();
    // Compressed samples are captures too.
    let rst = std::fs::read(fixture("rst-abort.pcap")).unwrap();
    std::fs::write(
        caps.join("b.pcap.zst"),
        zstd::encode_all(&rst[..], 3).unwrap(),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &std::fs::read(fixture("refused.pcap")).unwrap()).unwrap();
    std::fs::write(caps.join("c.pcap.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(caps.join("notes.txt"), "not a capture").unwrap();

    let o = timewait(&["check", s(&caps), "--baselines", s(&base), "--update"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for name in ["a.pcap.json", "b.pcap.zst.json", "c.pcap.gz.json"] {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(base.join(name)).unwrap()).unwrap();
        assert_eq!(v["schema"], "timewait/1", "{name}");
    }
    assert!(!base.join("notes.txt.json").exists());

    let xml = dir.join("junit.xml");
    let o = timewait(&[
        "check",
        s(&caps),
        "--baselines",
        s(&base),
        "--fail-on",
        "warning",
        "--junit",
        s(&xml),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let report = junit(&xml);
    assert_eq!(report.tests, 3);
    assert_eq!(report.failures, 0);

    // The first sample now shows the FIN-into-RST problem: that one fails.
    std::fs::copy(fixture("finrst-tw-gone.pcap"), caps.join("a.pcap")).unwrap();
    let o = timewait(&[
        "check",
        s(&caps),
        "--baselines",
        s(&base),
        "--fail-on",
        "warning",
        "--junit",
        s(&xml),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("FAIL a.pcap:"), "{out}");
    assert!(
        out.contains("new: warning fin-retransmit-rst 10.4.1.1 (connections 0 2 4)"),
        "{out}"
    );
    assert!(
        out.contains("ok b.pcap.zst:") && out.contains("ok c.pcap.gz:"),
        "{out}"
    );
    let report = junit(&xml);
    assert_eq!((report.tests, report.failures, report.errors), (3, 1, 0));
    let cases = &report.test_suites[0].test_cases;
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a.pcap", "b.pcap.zst", "c.pcap.gz"]);
    match &cases[0].status {
        TestCaseStatus::NonSuccess { kind, message, .. } => {
            assert_eq!(*kind, NonSuccessKind::Failure);
            let message = message.as_ref().unwrap().as_str();
            assert!(
                message.starts_with("1 new finding since the baseline: warning fin-retransmit-rst"),
                "{message}"
            );
        }
        other => panic!("a.pcap should fail: {other:?}"),
    }
    assert!(matches!(cases[1].status, TestCaseStatus::Success { .. }));

    // Without --fail-on any new finding fails, the info ones too.
    let o = timewait(&["check", s(&caps), "--baselines", s(&base)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("new: info "), "{}", stdout(&o));
    // --fail-on error: the new warning does not fail the run.
    let o = timewait(&[
        "check",
        s(&caps),
        "--baselines",
        s(&base),
        "--fail-on",
        "error",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn check_reports_an_unreadable_capture_as_a_junit_error_and_exits_2() {
    let dir = workdir("unreadable");
    let caps = dir.join("captures");
    let base = dir.join("baselines");
    std::fs::copy(fixture("client-close.pcap"), caps.join("a.pcap")).unwrap();
    assert_eq!(
        timewait(&["check", s(&caps), "--baselines", s(&base), "--update"])
            .status
            .code(),
        Some(0)
    );
    std::fs::write(caps.join("z.pcap"), "this is not a capture file").unwrap();
    let xml = dir.join("junit.xml");
    let o = timewait(&[
        "check",
        s(&caps),
        "--baselines",
        s(&base),
        "--junit",
        s(&xml),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("ERROR z.pcap: not a pcap or pcapng file"),
        "{}",
        stdout(&o)
    );
    let report = junit(&xml);
    assert_eq!((report.tests, report.failures, report.errors), (2, 0, 1));
    assert!(matches!(
        report.test_suites[0].test_cases[1].status,
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            ..
        }
    ));
}

#[test]
fn check_refuses_bad_setups_before_reading_any_capture() {
    let dir = workdir("setup");
    let caps = dir.join("captures");
    let base = dir.join("baselines");
    // An empty folder checks nothing: that is a mistake, not a pass.
    let o = timewait(&["check", s(&caps), "--baselines", s(&base), "--update"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no capture files"), "{}", stderr(&o));
    std::fs::copy(fixture("client-close.pcap"), caps.join("a.pcap")).unwrap();
    std::fs::copy(fixture("refused.pcap"), caps.join("b.pcap")).unwrap();
    // No baselines folder without --update.
    let o = timewait(&["check", s(&caps), "--baselines", s(&base)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--update"), "{}", stderr(&o));
    // A broken baseline: said once, and no capture was read.
    assert_eq!(
        timewait(&["check", s(&caps), "--baselines", s(&base), "--update"])
            .status
            .code(),
        Some(0)
    );
    std::fs::write(base.join("b.pcap.json"), "{\"schema\": ").unwrap();
    let o = timewait(&["check", s(&caps), "--baselines", s(&base)]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "", "no capture is checked");
    assert_eq!(
        stderr(&o).matches("b.pcap.json").count(),
        1,
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(base.join("b.pcap.json")).unwrap();
    // An unwritable JUnit path fails first too.
    let o = timewait(&[
        "check",
        s(&caps),
        "--baselines",
        s(&base),
        "--junit",
        s(&dir.join("no/such/dir/j.xml")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("--junit"), "{}", stderr(&o));
    // A capture without a baseline passes with a note, unless --fail-on
    // finds something at or above it.
    let o = timewait(&["check", s(&caps), "--baselines", s(&base)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ok b.pcap: no baseline"),
        "{}",
        stdout(&o)
    );
    let o = timewait(&[
        "check",
        s(&caps),
        "--baselines",
        s(&base),
        "--fail-on",
        "warning",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("FAIL b.pcap: no baseline"),
        "{}",
        stdout(&o)
    );
}

/// README's "Use in CI" runs as written: its `--update` line, then its
/// `run:` line, in a folder laid out as the example expects.
#[test]
fn readme_ci_example_runs() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("## Use in CI").expect("a Use in CI section")..];
    let commands: Vec<Vec<String>> = section
        .lines()
        .take_while(|l| !l.starts_with("Or directly"))
        .filter_map(|l| l.split_once("timewait check ").map(|(_, rest)| rest))
        .map(|rest| rest.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(commands.len(), 2, "the --update line and the run line");
    assert!(commands[0].contains(&"--update".to_string()));
    assert!(commands[1].contains(&"--junit".to_string()));
    let dir = workdir("readme");
    std::fs::copy(
        fixture("finrst-tw-gone.pcap"),
        dir.join("captures/sample.pcap"),
    )
    .unwrap();
    for (i, args) in commands.iter().enumerate() {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_timewait"))
            .arg("check")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "step {i}: {}", stderr(&o));
    }
    let junit_name = &commands[1][commands[1].iter().position(|a| a == "--junit").unwrap() + 1];
    let report = junit(&dir.join(junit_name));
    assert_eq!((report.tests, report.failures), (1, 0));
    assert!(section.contains(&format!("path: {junit_name}")));
}
