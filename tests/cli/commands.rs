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
