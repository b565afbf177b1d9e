//! The filters and options of the commands, run as a user runs them: the
//! rows `conns` keeps for each filter, and what `--time-wait` changes.

use crate::support::*;

/// The connection ids `conns --format ndjson` prints for these arguments.
fn ids(file: &str, extra: &[&str]) -> Vec<u64> {
    let path = fixture(file);
    let mut args = vec!["conns", path.to_str().unwrap(), "--format", "ndjson"];
    args.extend_from_slice(extra);
    let o = timewait(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn conns_keeps_only_the_connections_each_filter_names() {
    // finrst-tw-gone: six connections from 10.4.1.1:40001-40006 to
    // 10.4.1.2:8080; the client closes 0-4, the server resets 5.
    let f = "finrst-tw-gone.pcap";
    assert_eq!(ids(f, &[]), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(ids(f, &["--closer", "server"]), vec![5]);
    assert_eq!(ids(f, &["--closer", "client"]), vec![0, 1, 2, 3, 4]);
    assert_eq!(ids(f, &["--close", "rst"]), vec![5]);
    assert_eq!(ids(f, &["--close", "fin"]), vec![0, 1, 2, 3, 4]);
    assert_eq!(ids(f, &["--port", "40003"]), vec![2]);
    assert_eq!(ids(f, &["--host", "10.4.1.2"]), vec![0, 1, 2, 3, 4, 5]);
    assert!(ids(f, &["--host", "10.9.9.9"]).is_empty());
    assert_eq!(ids(f, &["--closer", "client", "--port", "40005"]), vec![4]);
    // syn-drop: connection 1's SYNs were never answered.
    assert_eq!(ids("syn-drop.pcap", &["--state", "syn_only"]), vec![1]);
    assert_eq!(ids("syn-drop.pcap", &["--state", "syn-only"]), vec![1]);
    assert_eq!(ids("syn-drop.pcap", &["--state", "complete"]), vec![0]);
    assert_eq!(ids("refused.pcap", &["--state", "refused"]), vec![0, 1]);
}

#[test]
fn time_wait_sets_the_length_of_every_time_wait_interval() {
    let path = fixture("syn-drop.pcap");
    let interval = |extra: &[&str]| {
        let mut args = vec!["conns", path.to_str().unwrap(), "--format", "json"];
        args.extend_from_slice(extra);
        let o = timewait(&args);
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let tw = &v[0]["time_wait"];
        // Seconds within the minute of an RFC 3339 time: enough for an
        // interval under a minute, or a whole one.
        let secs = |k: &str| {
            let t = tw[k].as_str().unwrap().trim_end_matches('Z');
            t.rsplit_once(':').unwrap().1.parse::<f64>().unwrap()
        };
        (
            tw["holder"].as_str().unwrap().to_string(),
            (secs("until") - secs("from")).rem_euclid(60.0),
        )
    };
    // The default is Linux's 60 s: same second of the minute.
    let (holder, d) = interval(&[]);
    assert_eq!(holder, "client");
    assert!(d.abs() < 1e-6, "{d}");
    let (_, d) = interval(&["--time-wait", "2.5"]);
    assert!((d - 2.5).abs() < 1e-6, "{d}");
}

/// `show` of finrst-tw-gone's connection 0 with these extra arguments.
fn show_finrst(extra: &[&str]) -> String {
    let path = fixture("finrst-tw-gone.pcap");
    let mut args = vec!["show", path.to_str().unwrap(), "--conn", "0"];
    args.extend_from_slice(extra);
    let o = timewait(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn show_colours_the_sides_and_the_rst_only_when_asked() {
    let coloured = show_finrst(&["--color", "always"]);
    // The client's states in cyan, the server's in magenta, the client's
    // RST (frame 11) in bold red, the FIN of frame 8 in bold yellow.
    assert!(coloured.contains("\x1b[36mSYN_SENT\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[35mLAST_ACK\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[31;1mR\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[33;1mF.\x1b[0m"), "{coloured}");
    // Without the escapes it is the plain ladder, column for column.
    let plain = show_finrst(&["--color", "never"]);
    assert!(!plain.contains('\x1b'), "{plain}");
    let stripped = strip_ansi(&coloured);
    assert_eq!(stripped, plain);
    // Piped, auto is plain.
    assert_eq!(show_finrst(&[]), plain);
    // Markdown goes into a ticket: never coloured.
    let md = show_finrst(&["--color", "always", "--format", "markdown"]);
    assert!(!md.contains('\x1b'), "{md}");
}

/// `s` without its SGR escapes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn show_keeps_the_ladder_within_the_width() {
    // Piped, the ladder has its natural width: wider than 60.
    let natural = show_finrst(&[]);
    assert!(natural.lines().any(|l| l.chars().count() > 60), "{natural}");
    let narrow = show_finrst(&["--width", "60"]);
    for line in narrow.lines() {
        assert!(line.chars().count() <= 60, "{line:?} in\n{narrow}");
    }
    // Nothing is lost: every frame with both states, every label and
    // the note (wrapped onto lines of its own) are still there.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let narrow_words = words(&narrow);
    for frame in 1..=11 {
        assert!(
            narrow
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&frame.to_string())),
            "frame {frame} in\n{narrow}"
        );
    }
    for text in [
        "TIME_WAIT <--- LAST_ACK",
        "R seq=14",
        "F. seq=12 ack=14 TSval=3422634614 FIN retransmitted",
        "RST instead of an ACK: the TIME_WAIT socket was gone",
    ] {
        assert!(narrow_words.contains(text), "{text} in\n{narrow}");
    }
    // Wide enough for one line per segment but not for the notes beside
    // it: each note on a line of its own under its row.
    let mid = show_finrst(&["--width", "100"]);
    for line in mid.lines() {
        assert!(line.chars().count() <= 100, "{line:?} in\n{mid}");
    }
    let lines: Vec<&str> = mid.lines().collect();
    let at = lines.iter().position(|l| l.contains("-R seq=14")).unwrap();
    assert!(lines[at].trim_end().ends_with("CLOSED"), "{mid}");
    assert_eq!(
        lines[at + 1].trim(),
        "RST instead of an ACK: the TIME_WAIT socket was gone"
    );
    // Wider, the note is beside the server's state, wrapped within it.
    let wide = show_finrst(&["--width", "120"]);
    let rst = wide.lines().find(|l| l.contains("-R seq=14")).unwrap();
    assert!(
        rst.contains("CLOSED") && rst.contains("RST instead"),
        "{wide}"
    );
    assert!(wide.lines().all(|l| l.chars().count() <= 120), "{wide}");
    assert!(words(&wide).contains("RST instead of an ACK: the TIME_WAIT socket was gone"));
    assert!(
        natural.lines().any(|l| l.chars().count() > 120),
        "{natural}"
    );
    // Narrower than the compact layout's 46 columns: it keeps those (as
    // the help says), and does not fail.
    let tiny = show_finrst(&["--width", "10"]);
    assert!(tiny.lines().all(|l| l.chars().count() <= 46), "{tiny}");
    assert!(words(&tiny).contains("R seq=14"), "{tiny}");
}

#[test]
fn show_fits_every_fixture_in_60_columns() {
    for (stem, path) in fixtures_with_truth() {
        let o = timewait(&[
            "show",
            path.to_str().unwrap(),
            "--conn",
            "0",
            "--width",
            "60",
        ]);
        if o.status.code() != Some(0) {
            // A capture without a connection 0 (no TCP) says so.
            assert!(
                stderr(&o).contains("no connection 0"),
                "{stem}: {}",
                stderr(&o)
            );
            continue;
        }
        for line in stdout(&o).lines() {
            assert!(line.chars().count() <= 60, "{stem}: {line}");
        }
    }
}

#[test]
fn timeline_colours_its_hosts_and_peaks_only_when_asked() {
    let path = fixture("finrst-tw-gone.pcap");
    let run = |extra: &[&str]| {
        let mut args = vec!["timeline", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = timewait(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
    };
    let coloured = run(&["--color", "always"]);
    // The one host in the first host colour, its peak in bold.
    assert!(coloured.contains("\x1b[31m10.4.1.1\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[1mpeak 1\x1b[0m"), "{coloured}");
    let plain = run(&["--color", "never"]);
    assert!(!plain.contains('\x1b'), "{plain}");
    assert_eq!(strip_ansi(&coloured), plain);
    assert_eq!(run(&[]), plain);
}
