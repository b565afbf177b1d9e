//! Host context: `timewait collect` files beside kernel-made captures
//! (fixtures/host-*.pcap, made by fixtures/host-collect.sh inside the
//! namespace whose kernel keeps the counters), `--host-info` with real and
//! broken pasted text, and `collect` itself.

use crate::support::{fixture, kernel_counter, stderr, stdout, timewait};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn host_input(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/host")
        .join(name)
        .display()
        .to_string()
}

fn json_of(args: &[&str]) -> Value {
    let o = timewait(args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("json")
}

fn analyze_json(stem: &str) -> Value {
    json_of(&[
        "analyze",
        fixture(&format!("{stem}.pcap")).to_str().unwrap(),
        "--format",
        "json",
    ])
}

fn findings<'a>(a: &'a Value, kind: &str) -> Vec<&'a Value> {
    a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// The reading of `counter` in a finding's host check.
fn reading(f: &Value, counter: &str) -> i64 {
    f["host_check"]["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["counter"] == counter)
        .unwrap_or_else(|| panic!("no {counter} in {}", f["host_check"]))["value"]
        .as_i64()
        .unwrap()
}

/// The increments in a collect file, per counter.
fn collected_delta(stem: &str, counter: &str) -> i64 {
    let text = std::fs::read_to_string(fixture(&format!("{stem}.pcap.host.json"))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let get = |s: &str| v[s]["counters"][counter].as_i64().unwrap_or(0);
    get("after") - get("before")
}

#[test]
fn collect_files_agree_with_nstat_run_beside_them() {
    // The fixture scripts also ran nstat in the same namespace around the
    // capture (kernel.tsv): every counter they recorded moved by as much in
    // the snapshots timewait took from /proc.
    for (stem, role) in [
        ("host-finrst", "client"),
        ("host-ports", "client"),
        ("host-churn", "client"),
        ("host-paws", "server"),
    ] {
        for counter in [
            "TcpExtPAWSTimewait",
            "TcpExtTCPTimeWaitOverflow",
            "TcpActiveOpens",
            "TcpPassiveOpens",
            "TcpExtTCPAbortOnClose",
            "TcpOutRsts",
        ] {
            let nstat = kernel_counter(stem, role, counter).expect("kernel.tsv row");
            assert_eq!(collected_delta(stem, counter), nstat, "{stem} {counter}");
        }
    }
}

#[test]
fn paws_rejects_are_confirmed_by_paws_timewait() {
    let a = analyze_json("host-paws");
    let paws = findings(&a, "paws-syn-drop");
    assert_eq!(paws.len(), 1);
    let f = paws[0];
    assert_eq!(f["host_check"]["verdict"], "confirmed");
    // One SYN rejected on the wire, one counted by the server's kernel.
    assert_eq!(
        reading(f, "TcpExtPAWSTimewait"),
        f["count"].as_i64().unwrap()
    );
    assert_eq!(
        reading(f, "TcpExtPAWSTimewait"),
        kernel_counter("host-paws", "server", "TcpExtPAWSTimewait").unwrap()
    );
    // The kernel release picks the explanation: no tw_recycle after 4.12.
    let notes = f["host_check"]["notes"].to_string();
    assert!(notes.contains("4.12 or later"), "{notes}");
}

#[test]
fn fin_rst_is_confirmed_by_time_wait_overflow_and_names_max_tw_buckets() {
    let a = analyze_json("host-finrst");
    let f = findings(&a, "fin-retransmit-rst")[0];
    assert_eq!(f["host_check"]["verdict"], "confirmed");
    assert_eq!(f["severity"], "warning");
    let overflow = reading(f, "TcpExtTCPTimeWaitOverflow");
    // The kernel overflowed on every client close (5), the wire shows the
    // 3 whose FIN was retransmitted into an RST.
    assert_eq!(
        overflow,
        kernel_counter("host-finrst", "client", "TcpExtTCPTimeWaitOverflow").unwrap()
    );
    assert!(overflow >= f["count"].as_i64().unwrap());
    let advice = f["advice"].as_str().unwrap();
    assert!(
        advice.starts_with("Raise net.ipv4.tcp_max_tw_buckets") && advice.contains("(now 0)"),
        "{advice}"
    );
}

#[test]
fn port_exhaustion_takes_the_hosts_range_and_names_the_settings() {
    let a = analyze_json("host-ports");
    assert_eq!(
        a["options"]["port_range"],
        serde_json::json!([40000, 40007])
    );
    let from = a["host"]["port_range"]["from"].as_str().unwrap();
    assert!(from.contains("net.ipv4.ip_local_port_range"), "{from}");
    let f = findings(&a, "time-wait-pressure")[0];
    assert_eq!(f["severity"], "error");
    assert_eq!(f["host_check"]["verdict"], "confirmed");
    // The host held as many TIME_WAIT sockets as the capture says.
    let peak = a["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["ip"] == "10.4.5.1")
        .unwrap()["time_wait_peak"]
        .as_i64()
        .unwrap();
    assert_eq!(reading(f, "TIME_WAIT sockets on 10.4.5.1"), peak);
    assert!(
        f["advice"]
            .as_str()
            .unwrap()
            .contains("net.ipv4.tcp_tw_reuse=1 (now 0")
    );
    let settings = findings(&a, "host-setting");
    let summaries: Vec<&str> = settings
        .iter()
        .map(|f| f["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("net.ipv4.tcp_tw_reuse = 0")),
        "{summaries:?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("ip_local_port_range = 40000 40007 (8 ports)")),
        "{summaries:?}"
    );
    // Without the host the 8 ports are not known: no time-wait-pressure.
    let plain = json_of(&[
        "analyze",
        fixture("host-ports.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--no-host-info",
    ]);
    assert!(findings(&plain, "time-wait-pressure").is_empty());
    // --port-range wins over the host's.
    let flag = json_of(&[
        "analyze",
        fixture("host-ports.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--port-range",
        "40000-40015",
    ]);
    assert_eq!(
        flag["options"]["port_range"],
        serde_json::json!([40000, 40015])
    );
    assert!(flag["host"]["port_range"].is_null());
}

#[test]
fn churn_is_confirmed_by_active_opens_and_time_wait_sockets() {
    let a = analyze_json("host-churn");
    let churn = findings(&a, "connection-churn")[0];
    assert_eq!(churn["host_check"]["verdict"], "confirmed");
    assert_eq!(
        reading(churn, "TcpActiveOpens"),
        a["summary"]["connections"].as_i64().unwrap()
    );
    let pressure = findings(&a, "time-wait-pressure")[0];
    assert_eq!(
        reading(pressure, "TIME_WAIT sockets on 10.4.7.1"),
        a["summary"]["time_wait_peak"]["sockets"].as_i64().unwrap()
    );
    let reuse = findings(&a, "host-setting");
    assert!(
        reuse.iter().any(
            |f| f["summary"].as_str().unwrap().contains("tcp_tw_reuse = 2")
                && f["advice"]
                    .as_str()
                    .unwrap()
                    .contains("needs TCP timestamps on both ends")
        ),
        "{reuse:?}"
    );
}

#[test]
fn counters_that_stayed_at_zero_contradict_and_lower_the_finding() {
    // The finrst collect file, with the overflow counter unchanged.
    let text = std::fs::read_to_string(fixture("host-finrst.pcap.host.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let before = v["before"]["counters"]["TcpExtTCPTimeWaitOverflow"].clone();
    v["after"]["counters"]["TcpExtTCPTimeWaitOverflow"] = before;
    let dir = tempdir("contradict");
    let forged = dir.join("forged.host.json");
    std::fs::write(&forged, v.to_string()).unwrap();
    let a = json_of(&[
        "analyze",
        fixture("host-finrst.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--host-info",
        forged.to_str().unwrap(),
    ]);
    let f = findings(&a, "fin-retransmit-rst")[0];
    assert_eq!(f["host_check"]["verdict"], "contradicted");
    assert_eq!(f["severity"], "info");
    assert_eq!(f["host_check"]["severity_before"], "warning");
    assert_eq!(a["summary"]["findings"]["warning"], 0);
}

#[test]
fn without_host_info_the_report_is_unchanged() {
    // A capture without a .host.json, and --no-host-info, give the same
    // report, and neither has the `host` keys.
    let dir = tempdir("plain");
    let copy = dir.join("host-ports.pcap");
    std::fs::copy(fixture("host-ports.pcap"), &copy).unwrap();
    let plain = timewait(&["analyze", copy.to_str().unwrap(), "--format", "json"]);
    let ignored = timewait(&[
        "analyze",
        fixture("host-ports.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--no-host-info",
    ]);
    let p: Value = serde_json::from_str(&stdout(&plain)).unwrap();
    let i: Value = serde_json::from_str(&stdout(&ignored)).unwrap();
    assert!(p.get("host").is_none());
    assert!(
        p["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f.get("host_check").is_none())
    );
    assert_eq!(p["findings"], i["findings"]);
    assert_eq!(p["options"], i["options"]);
    let text = stdout(&timewait(&["analyze", copy.to_str().unwrap()]));
    assert!(!text.contains("\nHost\n"), "{text}");
}

#[test]
fn text_and_markdown_show_the_host() {
    let path = fixture("host-paws.pcap");
    let text = stdout(&timewait(&[
        "analyze",
        path.to_str().unwrap(),
        "--width",
        "200",
    ]));
    assert!(text.contains("\nHost\n"), "{text}");
    assert!(
        text.contains("host: confirmed by the host: TcpExtPAWSTimewait +1 during the capture"),
        "{text}"
    );
    assert!(text.contains("TcpExtPAWSTimewait +1"), "{text}");
    let md = stdout(&timewait(&[
        "analyze",
        path.to_str().unwrap(),
        "--format",
        "markdown",
    ]));
    assert!(md.contains("#### Host"), "{md}");
    assert!(md.contains("**Host:** confirmed by the host"), "{md}");
}

#[test]
fn pasted_sysctl_nstat_and_ss_text_is_read() {
    // Real outputs from this machine: range 40000-40999, tcp_tw_reuse 0,
    // 5 connections between the two nstat runs, 5 TIME-WAIT in ss.
    let a = json_of(&[
        "analyze",
        fixture("host-ports.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--host-info",
        &host_input("sysctl-a.txt"),
        "--host-info",
        &host_input("nstat-before.txt"),
        "--host-info",
        &host_input("nstat-after.txt"),
        "--host-info",
        &host_input("ss-tan.txt"),
    ]);
    assert_eq!(
        a["options"]["port_range"],
        serde_json::json!([40000, 40999])
    );
    let host = &a["host"]["hosts"][0];
    assert_eq!(host["counters"]["TcpActiveOpens"], 5);
    assert_eq!(host["counter_span"]["kind"], "between_pastes");
    assert_eq!(host["sysctls"]["net.ipv4.tcp_tw_reuse"], "0");
    assert_eq!(host["sockets"]["time_wait_by_local"]["127.0.0.1"], 5);
    assert_eq!(host["addresses"], serde_json::json!([]));
    // ss -s alone: the TIME_WAIT total.
    let s = json_of(&[
        "analyze",
        fixture("host-ports.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--host-info",
        &host_input("ss-s.txt"),
    ]);
    assert_eq!(s["host"]["hosts"][0]["sockets"]["by_state"]["TIME_WAIT"], 5);
}

#[test]
fn a_named_bad_host_file_is_a_usage_error_with_the_reason() {
    let pcap = fixture("host-ports.pcap");
    for (file, reason) in [
        ("empty.txt", "empty"),
        ("truncated.host.json", "truncated"),
        ("macos-sysctl.txt", "BSD or macOS"),
        ("netstat-tan.txt", "netstat"),
        ("nstat-truncated.txt", "without any Tcp"),
        ("missing.txt", "cannot read"),
    ] {
        let o = timewait(&[
            "analyze",
            pcap.to_str().unwrap(),
            "--host-info",
            &host_input(file),
        ]);
        assert_eq!(o.status.code(), Some(2), "{file}");
        let err = stderr(&o);
        assert!(err.contains(reason) && err.contains(file), "{file}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A capture given as host information.
    let o = timewait(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--host-info",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not text"), "{}", stderr(&o));
}

#[test]
fn a_bad_host_file_found_beside_the_capture_is_reported_and_skipped() {
    let dir = tempdir("beside");
    let copy = dir.join("dump.pcap");
    std::fs::copy(fixture("host-ports.pcap"), &copy).unwrap();
    std::fs::copy(
        host_input("truncated.host.json"),
        dir.join("dump.pcap.host.json"),
    )
    .unwrap();
    let o = timewait(&["analyze", copy.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("analysing the capture without it"),
        "{}",
        stderr(&o)
    );
    let a: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(a["summary"]["connections"], 8);
    assert_eq!(a["host"]["hosts"], serde_json::json!([]));
    assert!(
        a["host"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("truncated")
    );
}

#[test]
fn collect_snapshot_is_read_back_by_analyze() {
    let dir = tempdir("snapshot");
    let out = dir.join("now.json");
    let o = timewait(&["collect", "--snapshot", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let snap: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(snap["schema"], "timewait-host/1");
    assert!(snap["counters"]["TcpActiveOpens"].is_i64());
    let a = json_of(&[
        "analyze",
        fixture("host-ports.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--host-info",
        out.to_str().unwrap(),
    ]);
    assert_eq!(a["host"]["hosts"][0]["counter_span"]["kind"], "totals");
}

#[test]
fn collect_survives_ctrl_c_and_takes_the_second_snapshot() {
    use std::os::unix::process::CommandExt;
    let dir = tempdir("ctrl-c");
    let out = dir.join("cap.host.json");
    // The command sends SIGINT to its whole process group (as a terminal's
    // Ctrl-C does), which holds timewait too: the command dies of it,
    // timewait takes the second snapshot and exits 128 + 2.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_timewait"))
        .args(["collect", "-o", out.to_str().unwrap(), "--"])
        .args(["sh", "-c", "sleep 0.2; kill -INT 0; sleep 5"])
        .process_group(0)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(v["after"]["unix_time"].as_f64() > v["before"]["unix_time"].as_f64());
    assert_eq!(v["command"][0], "sh");
}

#[test]
fn collect_names_the_file_after_the_capture_or_asks_for_one() {
    let dir = tempdir("name");
    let cap = dir.join("x.pcap");
    // `true` stands for a capture command that writes -w FILE.
    let o = timewait(&["collect", "--", "true", "-w", cap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(dir.join("x.pcap.host.json").is_file());
    let o = timewait(&["collect", "--", "true", "-i", "eth0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("-o"), "{}", stderr(&o));
    let never = dir.join("never.host.json");
    let o = timewait(&[
        "collect",
        "-o",
        never.to_str().unwrap(),
        "--",
        "/nonexistent/tcpdump",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot run"), "{}", stderr(&o));
    assert!(!never.exists());
    let o = timewait(&["collect"]);
    assert_eq!(o.status.code(), Some(2));
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("timewait-host-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn two_snapshots_taken_by_hand_give_the_increments_between_them() {
    let dir = tempdir("by-hand");
    let before = dir.join("before.json");
    let after = dir.join("after.json");
    let snap = |p: &Path| {
        let o = timewait(&["collect", "--snapshot", "-o", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    snap(&before);
    // Three connections this namespace's kernel counts (TcpActiveOpens).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    for _ in 0..3 {
        let c = std::net::TcpStream::connect(addr).unwrap();
        drop(listener.accept().unwrap());
        drop(c);
    }
    snap(&after);
    // Given after first: they are put in time order.
    let a = json_of(&[
        "analyze",
        fixture("host-ports.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--host-info",
        after.to_str().unwrap(),
        "--host-info",
        before.to_str().unwrap(),
    ]);
    let host = &a["host"]["hosts"][0];
    assert_eq!(host["counter_span"]["kind"], "between");
    // Other programs on this machine may open connections too.
    assert!(
        host["counters"]["TcpActiveOpens"].as_i64().unwrap() >= 3,
        "{host}"
    );
}

#[test]
fn a_snapshot_checks_only_the_findings_of_its_own_host() {
    // The client's collect file beside the server-side capture of the same
    // traffic (finrst-tw-gone.pcap): the client is the active closer, so
    // its overflow counter confirms the finding.
    let a = json_of(&[
        "analyze",
        fixture("finrst-tw-gone.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--host-info",
        fixture("host-finrst.pcap.host.json").to_str().unwrap(),
    ]);
    let f = findings(&a, "fin-retransmit-rst")[0];
    assert_eq!(f["host_check"]["verdict"], "confirmed");
    // A snapshot of an unrelated host (10.4.1.1) says nothing about the
    // PAWS server 10.4.100.2: no check, severity as the wire says.
    let plain = json_of(&[
        "analyze",
        fixture("host-paws.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--no-host-info",
    ]);
    let other = json_of(&[
        "analyze",
        fixture("host-paws.pcap").to_str().unwrap(),
        "--format",
        "json",
        "--host-info",
        fixture("host-finrst.pcap.host.json").to_str().unwrap(),
    ]);
    let p = findings(&plain, "paws-syn-drop")[0];
    let o = findings(&other, "paws-syn-drop")[0];
    assert!(o.get("host_check").is_none(), "{o}");
    assert_eq!(p["severity"], o["severity"]);
}
