//! Findings on kernel-made captures, checked against the frames the
//! fixture scripts document and the kernel's own counters
//! (`<name>.kernel.tsv`).

use crate::support::*;
use timewait::analysis::{Analysis, Options, analyze};
use timewait::detect::{Finding, FindingKind, Severity};
use timewait::track::ConnId;

fn run(stem: &str, options: Options) -> Analysis {
    let path = fixture(&format!("{stem}.pcap"));
    analyze(stem, std::fs::File::open(path).unwrap(), &options).unwrap()
}

fn findings(a: &Analysis, kind: FindingKind) -> Vec<&Finding> {
    a.findings.iter().filter(|f| f.kind == kind).collect()
}

fn counter(stem: &str, ns: &str, name: &str) -> i64 {
    kernel_counter(stem, ns, name).unwrap_or_else(|| panic!("{stem}: {ns} {name}"))
}

#[test]
fn fin_retransmitted_into_rst_is_found_and_near_misses_are_not() {
    let a = run("finrst-tw-gone", Options::default());
    let f = findings(&a, FindingKind::FinRetransmitRst);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Warning);
    // Streams 0, 2, 4: FIN, FIN, FIN retransmitted, RST (documented in the script).
    assert_eq!(f[0].connections, ids(&[0, 2, 4]));
    assert_eq!(
        f[0].frames,
        vec![8, 9, 10, 11, 29, 30, 31, 32, 51, 52, 53, 54]
    );
    assert_eq!(f[0].host.as_deref(), Some("10.4.1.1"));
    // The kernel agrees: the client had no TIME_WAIT sockets to give.
    assert!(counter("finrst-tw-gone", "client", "TcpExtTCPTimeWaitOverflow") >= 3);
    assert_eq!(counter("finrst-tw-gone", "server", "TcpRetransSegs"), 3);
    // Stream 3 (RST answers the first FIN) and 5 (abort) are abortive closes.
    let abort: Vec<ConnId> = findings(&a, FindingKind::AbortiveClose)
        .iter()
        .flat_map(|f| f.connections.clone())
        .collect();
    assert_eq!(abort, ids(&[3, 5]));
    // The clean close (stream 1) is in neither.
    assert!(
        a.findings
            .iter()
            .all(|f| !f.connections.contains(&ConnId(1)))
    );
}

/// The closer's kernel resets because data came after its FIN: an abort
/// (TcpExtTCPAbortOnData), never a missing TIME_WAIT socket.
#[test]
fn data_after_close_is_an_abort_counted_by_the_kernel() {
    let stem = "data-after-close";
    let a = run(stem, Options::default());
    assert!(findings(&a, FindingKind::FinRetransmitRst).is_empty());
    let f = findings(&a, FindingKind::AbortiveClose);
    assert_eq!(f.len(), 1, "{:?}", a.findings);
    assert_eq!(f[0].connections, ids(&[0, 1]));
    // FIN, the response behind it, the RST (documented in the script).
    assert_eq!(f[0].frames, vec![6, 7, 8, 14, 15, 16]);
    assert!(
        f[0].summary.contains("data after close"),
        "{}",
        f[0].summary
    );
    let aborts = counter(stem, "client", "TcpExtTCPAbortOnData");
    assert_eq!(f[0].count as i64, aborts);
    assert!(
        f[0].evidence
            .iter()
            .all(|e| e.note.contains("TcpExtTCPAbortOnData")),
        "{:?}",
        f[0].evidence
    );
}

#[test]
fn paws_rejected_syn_behind_nat_is_a_warning_with_the_delay() {
    let stem = "nat-paws-rejected";
    let a = run(stem, Options::default());
    let f = findings(&a, FindingKind::PawsSynDrop);
    assert_eq!(f.len(), 1, "{:#?}", a.findings);
    assert_eq!(f[0].severity, Severity::Warning, "it connected in the end");
    assert_eq!(f[0].connections, ids(&[1]));
    // SYN 11, challenge ACK 12, client RST 13, SYN again 14, SYN-ACK 15.
    for frame in [11, 12, 13, 14, 15] {
        assert!(f[0].frames.contains(&frame), "{frame} in {:?}", f[0].frames);
    }
    assert!(
        f[0].evidence[0].note.contains("bare ACK"),
        "{}",
        f[0].evidence[0].note
    );
    assert!(f[0].summary.contains("delayed up to"), "{}", f[0].summary);
    assert_eq!(counter(stem, "server", "TcpExtPAWSTimewait"), 1);
    // The refused reuse is explained by PAWS, not reported as a reuse.
    assert!(findings(&a, FindingKind::TupleReuse).is_empty());
}

#[test]
fn paws_rejected_syn_that_never_connects_is_an_error() {
    let stem = "nat-paws-fail";
    let a = run(stem, Options::default());
    let f = findings(&a, FindingKind::PawsSynDrop);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].summary.contains("never connected"), "{}", f[0].summary);
    assert_eq!(counter(stem, "client2", "TcpAttemptFails"), 1);
    assert!(counter(stem, "server", "TcpExtPAWSTimewait") >= 1);
    assert_eq!(
        a.connections[1].handshake.state,
        timewait::track::HandshakeState::Challenged
    );
}

#[test]
fn accepted_reuse_of_a_server_time_wait_is_tuple_reuse_not_paws() {
    let stem = "nat-paws-accepted";
    let a = run(stem, Options::default());
    assert!(findings(&a, FindingKind::PawsSynDrop).is_empty());
    let f = findings(&a, FindingKind::TupleReuse);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].connections, ids(&[1]));
    assert_eq!(f[0].frames, vec![11]);
    assert!(f[0].summary.contains("server held"), "{}", f[0].summary);
    assert_eq!(counter(stem, "server", "TcpExtPAWSTimewait"), 0);
    // The old connection's TIME_WAIT ended when the tuple was taken over.
    let old = &a.connections[0];
    assert_eq!(old.time_wait.reused_by, Some(ConnId(1)));
    assert_eq!(old.time_wait.until, Some(a.connections[1].start));
}

#[test]
fn every_port_in_time_wait_is_an_error_with_the_range_given() {
    let stem = "ports-exhausted";
    let narrow = Options {
        port_range: (40000, 40007),
        ..Options::default()
    };
    let a = run(stem, narrow);
    let f = findings(&a, FindingKind::TimeWaitPressure);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].summary.contains("8 of its 8"), "{}", f[0].summary);
    assert!(f[0].summary.contains("EADDRNOTAVAIL"));
    // The kernel: 8 connects went out, the rest failed locally.
    assert_eq!(counter(stem, "client", "connect_ok"), 8);
    assert!(counter(stem, "client", "connect_eaddrnotavail") > 0);
    assert_eq!(
        a.connections.len(),
        8,
        "failed connects never reach the wire"
    );
    // With the default range the same 8 ports are no pressure at all.
    let a = run(stem, Options::default());
    assert!(findings(&a, FindingKind::TimeWaitPressure).is_empty());
}

#[test]
fn tw_reuse_shows_as_tuple_reuse_matching_the_kernels_count() {
    let stem = "ports-tw-reuse";
    let a = run(stem, Options::default());
    let f = findings(&a, FindingKind::TupleReuse);
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].count as i64,
        counter(stem, "client", "TcpExtTWRecycled")
    );
    assert!(f[0].summary.contains("client's own"), "{}", f[0].summary);
}

#[test]
fn connection_per_request_is_churn_and_a_pool_is_not() {
    let a = run("churn-redis", Options::default());
    let f = findings(&a, FindingKind::ConnectionChurn);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].count, 101);
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(
        f[0].summary.contains("save 100 handshakes"),
        "{}",
        f[0].summary
    );
    assert!(
        f[0].summary.contains("101 TIME_WAIT sockets on 10.4.7.1"),
        "{}",
        f[0].summary
    );
    assert_eq!(counter("churn-redis", "client", "TcpExtTW"), 101);
    let pool = run("pool-redis", Options::default());
    assert!(findings(&pool, FindingKind::ConnectionChurn).is_empty());
    assert!(pool.findings.iter().all(|f| f.severity == Severity::Info));
}

#[test]
fn keep_alive_idle_timeout_is_named() {
    for (stem, timeout) in [
        ("phenomena-keepalive-idle", "2.0 s"),
        ("keepalive-idle", "1.0 s"),
    ] {
        let a = run(stem, Options::default());
        let f = findings(&a, FindingKind::ServerActiveClose);
        assert_eq!(f.len(), 1, "{stem}");
        assert_eq!(f[0].count, 6, "{stem}");
        assert!(
            f[0].summary
                .contains(&format!("keep-alive idle timeout of about {timeout}")),
            "{stem}: {}",
            f[0].summary
        );
    }
    let a = run("server-close", Options::default());
    let f = findings(&a, FindingKind::ServerActiveClose);
    assert!(
        f[0].summary.contains("right after its response"),
        "{}",
        f[0].summary
    );
}

#[test]
fn refused_and_unanswered_syns_are_handshake_failures() {
    let a = run("refused", Options::default());
    let f = findings(&a, FindingKind::HandshakeFailure);
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].summary,
        "10.3.5.2:9: 2 connection attempts from client 10.3.5.1: 2 refused (RST); nothing \
         listens on port 9"
    );
    // An nftables drop of every SYN to 8081 while 8080 answered: the
    // pattern of a firewall rule for that port, and the kernel agrees (the
    // client's SYN went out three times, no SYN-ACK came back).
    let a = run("syn-drop", Options::default());
    let f = findings(&a, FindingKind::HandshakeFailure);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].frames, vec![11, 12, 13]);
    assert!(
        f[0].summary.contains(
            "1 never answered; every SYN to port 8081 was lost while port 8080 of the same \
             host answered: a firewall rule"
        ),
        "{}",
        f[0].summary
    );
    assert_eq!(counter("syn-drop", "client", "TcpExtTCPSynRetrans"), 2);
}

#[test]
fn ordinary_closes_raise_nothing_above_info() {
    for stem in [
        "client-close",
        "ipv6",
        "vlan",
        "simultaneous-close",
        "pool-redis",
        "server-close",
    ] {
        let a = run(stem, Options::default());
        let loud: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.severity > Severity::Info)
            .map(|f| f.summary.clone())
            .collect();
        assert!(loud.is_empty(), "{stem}: {loud:?}");
    }
}

#[test]
fn only_and_skip_select_findings_and_summary_counts_them() {
    let o = timewait(&[
        "analyze",
        "--format",
        "json",
        "--only",
        "fin-retransmit-rst,abortive-close",
        "--skip",
        "abortive-close",
        fixture("finrst-tw-gone.pcap").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kinds: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["fin-retransmit-rst"]);
    assert_eq!(json["summary"]["findings"]["warning"], 1);
    let bad = timewait(&[
        "analyze",
        "--only",
        "nope",
        fixture("finrst-tw-gone.pcap").to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("unknown finding kind"));
}

// --- paws-syn-drop against the kernel (issue 11) ---------------------------

/// SYNs the findings call PAWS-rejected by a TIME_WAIT socket: each
/// evidence row is one SYN, so this is what the kernel counts in
/// TcpExtPAWSTimewait.
fn paws_rejected_syns(a: &Analysis) -> i64 {
    findings(a, FindingKind::PawsSynDrop)
        .iter()
        .filter(|f| f.summary.contains("(PAWS:"))
        .map(|f| f.count as i64)
        .sum()
}

/// Frames of one tshark stream.
fn stream_frames(stem: &str, stream: u32) -> Vec<TsharkFrame> {
    tshark_truth(stem)
        .into_iter()
        .filter(|r| r.stream == Some(stream))
        .collect()
}

#[test]
fn time_wait_paws_rejects_are_counted_syn_by_syn_like_the_kernel() {
    // rfc1337=1: every SYN of stream 1 is rejected; six bare ACKs, and the
    // SYN 10 ms after the first ACK meets the 500 ms rate limit.
    let stem = "nat-paws-fail";
    let a = run(stem, Options::default());
    let f = findings(&a, FindingKind::PawsSynDrop);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Error);
    assert_eq!(f[0].connections, ids(&[1]));
    assert_eq!(f[0].frames, (10..=29).collect::<Vec<u64>>());
    assert_eq!(f[0].count, 7);
    assert_eq!(
        paws_rejected_syns(&a),
        counter(stem, "server", "TcpExtPAWSTimewait")
    );
    let first = &f[0].evidence[0].note;
    assert!(
        first.contains("is below ts_recent")
            && first
                .contains("of the TIME_WAIT socket the server holds since frame 10 (connection 0")
            && first.contains("answered by bare ACK 12"),
        "{first}"
    );
    assert!(
        f[0].evidence[1].note.contains("rate-limited"),
        "{}",
        f[0].evidence[1].note
    );
    assert_eq!(counter(stem, "server", "TcpExtTCPACKSkippedTimeWait"), 1);

    // rfc1337=0: one reject, the RST frees the socket, the retry connects.
    let stem = "nat-paws-rejected";
    let a = run(stem, Options::default());
    let f = findings(&a, FindingKind::PawsSynDrop);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].frames, vec![10, 11, 12, 13, 14, 15]);
    assert_eq!(
        paws_rejected_syns(&a),
        counter(stem, "server", "TcpExtPAWSTimewait")
    );
}

#[test]
fn time_wait_reject_by_sequence_is_reported_as_not_paws() {
    let stem = "tw-seq-reject";
    let a = run(stem, Options::default());
    let f = findings(&a, FindingKind::PawsSynDrop);
    assert_eq!(f.len(), 1, "{:#?}", a.findings);
    assert_eq!(f[0].severity, Severity::Warning, "it connected in the end");
    assert_eq!(f[0].connections, ids(&[1]));
    assert_eq!(f[0].count, 1);
    assert!(f[0].summary.contains("by sequence"), "{}", f[0].summary);
    assert!(
        f[0].evidence[0]
            .note
            .contains("a reject by sequence, not PAWS"),
        "{}",
        f[0].evidence[0].note
    );
    // The kernel: no PAWS reject at all.
    assert_eq!(counter(stem, "server", "TcpExtPAWSTimewait"), 0);
    assert_eq!(paws_rejected_syns(&a), 0);
    assert_eq!(counter(stem, "client", "connect_ok"), 1);
    // Frames: the server's last ACK of stream 0 (TIME_WAIT from there),
    // then SYN, bare ACK, RST, SYN, SYN-ACK of stream 1 (from tshark).
    let old = stream_frames(stem, 0);
    let new = stream_frames(stem, 1);
    let flags: Vec<(bool, bool, bool)> = new[..5]
        .iter()
        .map(|r| (r.syn(), r.ack_flag(), r.rst()))
        .collect();
    assert_eq!(
        flags,
        vec![
            (true, false, false),
            (false, true, false),
            (false, false, true),
            (true, false, false),
            (true, true, false)
        ]
    );
    // The rejected SYN's ISN is below the old connection's rcv_nxt, which
    // the bare ACK echoes.
    let last_old = old.last().unwrap();
    assert_eq!(new[1].ack, last_old.ack);
    assert!((new[0].seq.wrapping_sub(new[1].ack) as i32) < 0);
    let mut want = vec![last_old.frame];
    want.extend(new[..5].iter().map(|r| r.frame));
    assert_eq!(f[0].frames, want);
}

#[test]
fn a_firewall_drop_is_a_handshake_failure_not_paws() {
    let stem = "paws-firewall";
    let a = run(stem, Options::default());
    assert!(findings(&a, FindingKind::PawsSynDrop).is_empty());
    let f = findings(&a, FindingKind::HandshakeFailure);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].connections, ids(&[3, 4]));
    let dropped: Vec<u64> = tshark_truth(stem)
        .iter()
        .filter(|r| r.syn() && !r.ack_flag() && r.dst.ends_with(":8081"))
        .map(|r| r.frame)
        .collect();
    assert_eq!(f[0].frames, dropped);
    assert_eq!(counter(stem, "server", "nft_drops"), dropped.len() as i64);
    assert_eq!(counter(stem, "client", "connect_failed"), 2);
    assert_eq!(counter(stem, "server", "TcpExtPAWSTimewait"), 0);
    assert!(a.findings.iter().all(|f| f.severity < Severity::Error));
}

#[test]
fn a_full_listen_queue_is_a_handshake_failure_not_paws() {
    let stem = "paws-listen-full";
    let a = run(stem, Options::default());
    assert!(findings(&a, FindingKind::PawsSynDrop).is_empty());
    let f = findings(&a, FindingKind::HandshakeFailure);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].count as i64, counter(stem, "client", "storm_failed"));
    assert!(counter(stem, "server", "TcpExtListenDrops") > 0);
    assert_eq!(counter(stem, "server", "TcpExtPAWSTimewait"), 0);
}

#[test]
fn ladder_of_a_rejected_syn_shows_the_servers_time_wait() {
    let show = |stem: &str| {
        let o = timewait(&[
            "show",
            fixture(&format!("{stem}.pcap")).to_str().unwrap(),
            "--conn",
            "1",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
    };
    let line = |text: &str, frame: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(frame))
            .unwrap_or_else(|| panic!("frame {frame} in\n{text}"))
            .to_string()
    };
    // rfc1337=1: the server's column stays TIME_WAIT, the client's
    // SYN_SENT through every RST, to the end.
    let text = show("nat-paws-fail");
    assert!(
        text.contains(
            "the server holds this 4-tuple in TIME_WAIT since +0.001 s (connection 0's close)"
        ),
        "{text}"
    );
    for frame in 11..=29 {
        let l = line(&text, &frame.to_string());
        let cols: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(cols[2], "SYN_SENT", "{l}");
        assert!(
            l.contains("> TIME_WAIT") || l.contains("- TIME_WAIT"),
            "{l}"
        );
    }
    assert!(
        line(&text, "12").contains("bare ACK from the server's TIME_WAIT socket (connection 0)")
    );
    assert!(line(&text, "13").contains("client stays in SYN_SENT"));
    assert!(line(&text, "13").contains("ignores it (tcp_rfc1337=1)"));
    assert!(line(&text, "14").contains("rate-limited"));
    // rfc1337=0: the RST frees the 4-tuple, the listener answers the retry.
    let text = show("nat-paws-rejected");
    assert!(line(&text, "11").contains("TIME_WAIT"));
    assert!(line(&text, "13").contains("SYN_SENT") && line(&text, "13").contains("LISTEN"));
    assert!(line(&text, "13").contains("freed the TIME_WAIT socket"));
    assert!(line(&text, "15").contains("SYN_RECV"));
}

#[test]
fn random_nat_reuses_get_the_kernels_verdict_each_time() {
    // Three re-makes of nat-paws-random: client2's TSval is below the
    // TIME_WAIT's ts_recent or not by luck (random per-connection offsets).
    // Whatever the luck, the verdict follows what the kernel did.
    let mut outcomes = Vec::new();
    for stem in [
        "nat-paws-random-1",
        "nat-paws-random-2",
        "nat-paws-random-3",
    ] {
        let a = run(stem, Options::default());
        let kernel = counter(stem, "server", "TcpExtPAWSTimewait");
        assert_eq!(paws_rejected_syns(&a), kernel, "{stem}");
        let paws = findings(&a, FindingKind::PawsSynDrop);
        let reuse = findings(&a, FindingKind::TupleReuse);
        if kernel > 0 {
            assert_eq!(paws.len(), 1, "{stem}");
            assert_eq!(paws[0].severity, Severity::Warning, "{stem}");
            assert_eq!(paws[0].connections, ids(&[1]), "{stem}");
            assert!(reuse.is_empty(), "{stem}");
        } else {
            assert!(paws.is_empty(), "{stem}");
            assert_eq!(reuse.len(), 1, "{stem}");
            assert_eq!(reuse[0].frames, vec![11], "{stem}");
        }
        assert!(
            a.findings.iter().all(|f| f.severity < Severity::Error),
            "{stem}"
        );
        assert_eq!(counter(stem, "client2", "connect_ok"), 1, "{stem}");
        outcomes.push(kernel > 0);
    }
    // The committed re-makes hold both outcomes.
    assert!(outcomes.contains(&true) && outcomes.contains(&false));
}

#[test]
fn several_nat_reuses_count_every_rejected_syn_per_4_tuple() {
    // Three ports reused by a second host behind the NAT (rfc1337=0):
    // each SYN is judged against its own 4-tuple's TIME_WAIT, not against
    // the newest TSval of the address; the count is the kernel's.
    let stem = "nat-paws-multi";
    let a = run(stem, Options::default());
    let kernel = counter(stem, "server", "TcpExtPAWSTimewait");
    assert_eq!(paws_rejected_syns(&a), kernel);
    let paws = findings(&a, FindingKind::PawsSynDrop);
    let reuse: u64 = findings(&a, FindingKind::TupleReuse)
        .iter()
        .map(|f| f.count)
        .sum();
    assert_eq!(paws.len(), usize::from(kernel > 0));
    if let Some(p) = paws.first() {
        assert_eq!(p.severity, Severity::Warning, "every connect succeeded");
        assert_eq!(p.connections.len() as i64, kernel);
    }
    // The other reuses were accepted by the TIME_WAIT socket.
    assert_eq!(reuse as i64, 3 - kernel);
    assert_eq!(counter(stem, "client2", "connect_ok"), 3);
}
