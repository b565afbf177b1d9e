//! The pipeline's threads: reading on a second thread changes nothing,
//! progress counts follow the run, the ndjson writer thread writes every
//! record once.

use crate::support::{many_connections, stdout, temp_file, timewait};
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use timewait::analysis::{Analysis, Options, Pipeline, ProgressCounts, Retain, analyze};
use timewait::capture::DamageKind;
use timewait::{capture, decode};

#[test]
fn reading_on_a_second_thread_gives_what_reading_in_line_gives() {
    let pcap = many_connections(1500);
    let options = Options::default();
    let threaded = analyze("x.pcap", &pcap[..], &options).unwrap();

    let mut inline = Pipeline::new(options, Retain::All);
    capture::read_capture(&pcap[..], |r| {
        if let Ok(seg) = decode::decode(r) {
            inline.feed_segment(&seg);
        }
    })
    .unwrap();
    let inline = inline.finish();

    assert_eq!(threaded.captures[0].tcp_packets, 12_000);
    // The reader hands segments over 1,024 at a time: several batches.
    assert_eq!(threaded.summary.connections, 1500);
    assert_eq!(threaded.summary.by_active_closer["client"], 1000);
    assert_eq!(threaded.summary.by_active_closer["server"], 500);
    let json = |a: &Analysis| {
        (
            serde_json::to_string(&a.connections).unwrap(),
            serde_json::to_string(&a.findings).unwrap(),
            serde_json::to_string(&a.hosts).unwrap(),
        )
    };
    assert_eq!(json(&threaded), json(&inline));
}

#[test]
fn progress_counts_follow_the_packets_and_connections() {
    let pcap = many_connections(300);
    let counts = Arc::new(ProgressCounts::default());
    let mut p = Pipeline::new(Options::default(), Retain::Nothing);
    p.report_progress(counts.clone());
    p.feed("a.pcap", &pcap[..]).unwrap();
    assert_eq!(counts.packets.load(Ordering::Relaxed), 2400);
    assert_eq!(counts.connections.load(Ordering::Relaxed), 300);
    p.feed("b.pcap", &pcap[..]).unwrap();
    assert_eq!(
        counts.packets.load(Ordering::Relaxed),
        4800,
        "over all files"
    );
}

#[test]
fn ndjson_writes_every_connection_once_as_the_json_report_has_it() {
    // More records than the writer thread takes at once (256).
    let path = temp_file("many.pcap", &many_connections(700));
    let p = path.to_str().unwrap();
    let ndjson = timewait(&["conns", "--format", "ndjson", p]);
    assert_eq!(ndjson.status.code(), Some(0));
    let mut streamed: Vec<serde_json::Value> = stdout(&ndjson)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    streamed.sort_by_key(|c| c["id"].as_u64());
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&timewait(&["analyze", "--format", "json", p]))).unwrap();
    let kept = report["connections"].as_array().unwrap();
    assert_eq!(streamed.len(), 700);
    assert_eq!(&streamed, kept);
    // The filters still apply on the writer's side of the hand-over.
    let servers = timewait(&["conns", "--format", "ndjson", "--closer", "server", p]);
    assert_eq!(
        stdout(&servers).lines().count(),
        234,
        "every third closes on the server"
    );
}

#[test]
fn a_sink_that_wants_no_more_stops_the_reading() {
    // 160,000 packets over 112 s; with a 1 s TIME_WAIT the first records
    // retire after some 16,000 segments.
    let pcap = many_connections(20_000);
    let options = Options {
        time_wait_s: 1.0,
        ..Options::default()
    };
    let mut got = 0;
    let sink = Box::new(|_record| {
        got += 1;
        if got == 5 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let mut p = Pipeline::new(options, Retain::Stream(sink));
    p.feed("big.pcap", &pcap[..]).unwrap();
    assert!(p.stopped());
    let a = p.finish();
    assert_eq!(got, 5, "no record after Break");
    let read = a.captures[0].packets;
    assert!(
        read < 80_000,
        "reading stopped early: {read} of 160,000 records read"
    );
}

#[test]
fn ndjson_into_a_closed_pipe_ends_cleanly() {
    let path = temp_file("head.pcap", &many_connections(3000));
    let mut child = Command::new(env!("CARGO_BIN_EXE_timewait"))
        .args(["conns", "--format", "ndjson", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // `| head -1`: the reader goes away after one line.
    let out = child.wait_with_output().unwrap();
    let record: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(record["id"].is_u64());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keeping_one_connection_keeps_that_one_and_changes_nothing_else() {
    let pcap = many_connections(300);
    let all = analyze("x.pcap", &pcap[..], &Options::default()).unwrap();
    let mut p = Pipeline::new(
        Options::default(),
        Retain::Only(timewait::track::ConnId(123)),
    );
    p.feed("x.pcap", &pcap[..]).unwrap();
    let one = p.finish();
    assert_eq!(one.connections.len(), 1);
    assert_eq!(
        serde_json::to_value(&one.connections[0]).unwrap(),
        serde_json::to_value(&all.connections[123]).unwrap()
    );
    assert_eq!(one.summary.connections, 300);
    assert_eq!(
        serde_json::to_value(&one.findings).unwrap(),
        serde_json::to_value(&all.findings).unwrap()
    );
}

#[test]
fn an_interrupt_stops_reading_and_reports_what_was_read() {
    let pcap = many_connections(300);
    let flag = Arc::new(AtomicBool::new(true));
    let mut p = Pipeline::new(Options::default(), Retain::Nothing);
    p.stop_when(Some(flag));
    p.feed("x.pcap", &pcap[..]).unwrap();
    let a = p.finish();
    let c = &a.captures[0];
    assert_eq!(c.packets, 1, "the record being read is the last");
    let d = c.damage.as_ref().expect("the report says why it stopped");
    assert_eq!(d.kind, DamageKind::Interrupted);
    assert_eq!(d.coverage(), "results cover frames 1-1");
    assert!(!a.has_input_errors(), "an interrupt is not a broken file");
    assert_eq!(a.summary.connections, 1);
}

#[test]
fn ctrl_c_on_a_file_ends_with_a_report_of_what_was_read() {
    // A named pipe given as the file: the run blocks reading it until we
    // write, so Ctrl-C lands while it reads, whatever the machine's speed.
    let dir = std::env::temp_dir().join(format!("timewait-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("live.pcap");
    let _ = std::fs::remove_file(&fifo);
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let child = Command::new(env!("CARGO_BIN_EXE_timewait"))
        .args(["analyze", "--format", "json", fifo.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening blocks until the child has opened its end: its Ctrl-C
    // handler is in place by then.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    use std::io::Write as _;
    writer.write_all(&many_connections(50)).unwrap();
    drop(writer);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("reading was interrupted (Ctrl-C); results cover frames 1-1"),
        "{err}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["captures"][0]["damage"]["kind"], "interrupted");
    assert_eq!(json["captures"][0]["packets"], 1);
    let _ = std::fs::remove_file(&fifo);
}

/// Writing records early (a tombstone for the rest of their TIME_WAIT
/// window, `track::tomb`) changes no record, finding or host table: taken
/// on every fixture with a bound of 0 and no settling time, every closed
/// connection goes that way at its next segment. Only a capture with a segment after its connection's record was
/// written may differ, and then it says so in `summary.late_segments`.
#[test]
fn writing_records_early_changes_nothing_on_any_fixture() {
    use timewait::analysis::Retain;
    let mut compared = 0;
    let mut early_total = 0;
    let mut names = Vec::new();
    for (name, path) in crate::support::fixtures_with_truth() {
        let bytes = std::fs::read(&path).unwrap();
        let run = |bound: Option<usize>| {
            let mut p = Pipeline::new(Options::default(), Retain::All);
            if let Some(n) = bound {
                p = p.compact_above(n, 0.0);
            }
            p.feed(&name, &bytes[..]).unwrap();
            p.finish()
        };
        let whole = run(None);
        let early = run(Some(0));
        assert_eq!(whole.summary.early_records, 0, "{name}");
        if early.summary.late_segments > 0 {
            eprintln!(
                "skipped {name}: {} late segments",
                early.summary.late_segments
            );
            continue;
        }
        names.push(name.clone());
        early_total += early.summary.early_records;
        let json = |a: &Analysis| {
            (
                serde_json::to_string_pretty(&a.connections).unwrap(),
                serde_json::to_string_pretty(&a.findings).unwrap(),
                serde_json::to_string_pretty(&a.hosts).unwrap(),
            )
        };
        let (w, e) = (json(&whole), json(&early));
        assert_eq!(w.0, e.0, "{name}: connections");
        assert_eq!(w.1, e.1, "{name}: findings");
        assert_eq!(w.2, e.2, "{name}: hosts");
        compared += 1;
    }
    eprintln!("compared {compared} fixtures, {early_total} records written early");
    assert!(compared >= 30, "compared {compared} fixtures");
    // Captures whose 4-tuples are taken over inside TIME_WAIT: the written
    // record's TIME_WAIT is cut (kept records, host peaks) as the whole
    // connection's would have been.
    for reuse in ["ports-tw-reuse", "nat-paws-accepted", "nat-paws-random-2"] {
        assert!(names.iter().any(|n| n == reuse), "{reuse} compared");
    }
    assert!(early_total >= 500, "{early_total} records written early");
}

/// The JSON report's records kept serialized (`Retain::Serialized`, as
/// `analyze --format json` keeps them, spilling sorted runs to a temporary
/// file) give, byte for byte, the report that serde makes of the whole
/// analysis with every record held, on every fixture: with every closed
/// connection's record written early, so that 4-tuples taken over later
/// cut TIME_WAITs already serialized (rewritten when the runs are merged),
/// kept in memory, and spilled in runs of one record and of a few.
#[test]
fn records_stored_serialized_give_the_json_report_of_records_held() {
    use timewait::analysis::Retain;
    let (mut compared, mut cut, mut stored_total) = (0, 0, 0);
    for (name, path) in crate::support::fixtures_with_truth() {
        let bytes = std::fs::read(&path).unwrap();
        let run = |retain: Retain| {
            let mut p = Pipeline::new(Options::default(), retain).compact_above(0, 0.0);
            p.feed(&name, &bytes[..]).unwrap();
            p.finish()
        };
        let render = |a: &Analysis| {
            let mut out = Vec::new();
            timewait::report::render_json(a, &mut out).unwrap();
            out
        };
        let held = run(Retain::All);
        let mut whole = serde_json::to_vec_pretty(&held).unwrap();
        whole.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&render(&held)),
            String::from_utf8_lossy(&whole),
            "{name}: held"
        );
        for spill_above in [usize::MAX, 1, 5_000, 60_000] {
            let stored = run(Retain::Serialized { spill_above });
            assert!(stored.connections.is_stored() && stored.connections.is_empty());
            assert_eq!(
                String::from_utf8_lossy(&render(&stored)),
                String::from_utf8_lossy(&whole),
                "{name}: spilled above {spill_above} bytes"
            );
        }
        stored_total += held.connections.len();
        cut += held
            .connections
            .iter()
            .filter(|c| c.time_wait.reused_by.is_some())
            .count();
        compared += 1;
    }
    eprintln!("{compared} fixtures, {stored_total} records, {cut} cut after they were written");
    assert!(
        compared >= 30 && stored_total >= 1_000,
        "{compared} {stored_total}"
    );
    assert!(cut >= 10, "{cut} records cut after they were written");
}

/// `analyze --format json` of a capture whose records take more than the
/// 32 MB kept in memory (30,000 connections, about 45 MB of records):
/// they go to a temporary file in sorted runs and come back in id order,
/// every one; where no temporary file can be made, the report fails with
/// the reason and writes nothing.
#[test]
fn the_json_report_spills_its_records_and_fails_cleanly_without_a_temporary_file() {
    let path = temp_file("spill.pcap", &many_connections(30_000));
    let path = path.to_str().unwrap();
    let out = timewait(&["analyze", "--format", "json", path]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    assert!(
        out.stdout.len() > timewait::analysis::SPILL_ABOVE,
        "{} bytes: no run was spilled",
        out.stdout.len()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<u64> = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (0..30_000).collect::<Vec<u64>>());
    let failed = Command::new(env!("CARGO_BIN_EXE_timewait"))
        .args(["analyze", "--format", "json", path])
        .env("TMPDIR", "/nonexistent/timewait-test")
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    assert!(failed.stdout.is_empty(), "a half-written report");
    let err = crate::support::stderr(&failed);
    assert!(
        err.contains("temporary file") && err.contains("/nonexistent/timewait-test"),
        "{err}"
    );
}

/// A record streamed early cannot be cut when a SYN takes its 4-tuple over
/// later: the streaming pipeline counts each such record
/// (`summary.streamed_uncut`) where an analyzing one cuts it.
#[test]
fn a_streamed_record_a_later_takeover_cannot_cut_is_counted() {
    use std::ops::ControlFlow;
    use timewait::analysis::Retain;
    let bytes = std::fs::read(crate::support::fixture("ports-tw-reuse.pcap")).unwrap();
    let mut streamed = Vec::new();
    let sink = Box::new(|r: timewait::track::ConnectionRecord| {
        streamed.push(r);
        ControlFlow::Continue(())
    });
    let mut p = Pipeline::new(Options::default(), Retain::Stream(sink)).compact_above(0, 0.0);
    p.feed("ports-tw-reuse", &bytes[..]).unwrap();
    let stream = p.finish();
    let mut p = Pipeline::new(Options::default(), Retain::All).compact_above(0, 0.0);
    p.feed("ports-tw-reuse", &bytes[..]).unwrap();
    let kept = p.finish();
    let cut = kept
        .connections
        .iter()
        .filter(|c| c.time_wait.reused_by.is_some())
        .count() as u64;
    assert!(cut > 0);
    assert_eq!(stream.summary.streamed_uncut, cut);
    assert_eq!(kept.summary.streamed_uncut, 0);
    let uncut = streamed
        .iter()
        .filter(|c| c.time_wait.reused_by.is_none())
        .count();
    assert_eq!(
        uncut,
        streamed.len(),
        "no streamed record names its successor"
    );
}
