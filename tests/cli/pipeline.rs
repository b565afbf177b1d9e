//! The pipeline's threads: reading on a second thread changes nothing,
//! progress counts follow the run, the ndjson writer thread writes every
//! record once.

use crate::support::{many_connections, stdout, temp_file, timewait};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use timewait::analysis::{Analysis, Options, Pipeline, ProgressCounts, analyze};
use timewait::{capture, decode};

#[test]
fn reading_on_a_second_thread_gives_what_reading_in_line_gives() {
    let pcap = many_connections(1500);
    let options = Options::default();
    let threaded = analyze("x.pcap", &pcap[..], &options).unwrap();

    let mut inline = Pipeline::new(options).keep_connections(true);
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
    let mut p = Pipeline::new(Options::default());
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
