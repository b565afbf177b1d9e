//! IP fragment reassembly (src/decode/frag.rs) on real captures: the
//! kernel-fragmented VXLAN underlay against the tunnel interface, and the
//! crafted edge cases in fixtures/frag/ against tshark's view of each.

use crate::support::*;
use std::collections::BTreeMap;
use timewait::analysis::Analysis;
use timewait::decode::SkipReason;

/// (client, server, closer) of every connection, in id order.
fn conns(a: &Analysis) -> Vec<(String, String, String)> {
    a.connections
        .iter()
        .map(|c| {
            (
                c.client.to_string(),
                c.server.to_string(),
                format!("{:?}", c.close.active_closer),
            )
        })
        .collect()
}

fn skipped(a: &Analysis) -> &BTreeMap<SkipReason, u64> {
    &a.captures[0].skipped
}

/// Every frame is a segment or counted once, whatever its fragments did.
fn every_frame_counted(a: &Analysis) {
    let c = &a.captures[0];
    assert_eq!(
        c.packets,
        c.tcp_packets + c.skipped.values().sum::<u64>(),
        "{}",
        c.path
    );
}

#[test]
fn the_fragmented_vxlan_underlay_gives_the_connections_of_the_tunnel_interface() {
    let outer = analyze_file(&fixture("frag-vxlan.pcap"));
    let inner = analyze_file(&fixture("frag-vxlan-inner.pcap"));
    assert_eq!(conns(&outer).len(), 2);
    assert_eq!(conns(&outer), conns(&inner));
    assert_eq!(
        conns(&outer)
            .iter()
            .map(|c| c.2.as_str())
            .collect::<Vec<_>>(),
        ["Client", "Server"]
    );
    // Every full-size segment of the server came in two fragments: the
    // first of each pair is counted as reassembled, the second carries
    // the segment.
    let truth = tshark_truth("frag-vxlan");
    let fragment_frames = truth.iter().filter(|r| r.stream.is_none()).count() as u64;
    assert!(fragment_frames >= 20, "{fragment_frames}");
    assert_eq!(
        skipped(&outer).get(&SkipReason::FragmentReassembled),
        Some(&fragment_frames)
    );
    assert_eq!(skipped(&outer).len(), 1, "{:?}", skipped(&outer));
    every_frame_counted(&outer);
    // Same bytes each way as tshark's segments carry.
    let tshark_bytes: u64 = truth.iter().map(|r| u64::from(r.len)).sum();
    let ours: u64 = outer
        .connections
        .iter()
        .map(|c| c.client_to_server.bytes + c.server_to_client.bytes)
        .sum();
    assert_eq!(ours, tshark_bytes);
}

/// Connection count, TCP frames and each connection's first and last frame
/// as tshark gives them.
fn agrees_with_tshark(stem: &str) -> Analysis {
    let a = analyze_file(&fixture(&format!("{stem}.pcap")));
    let truth = tshark_truth(stem);
    let streams = streams(&truth);
    assert_eq!(a.captures[0].packets, truth.len() as u64, "{stem}");
    let tcp_frames = truth.iter().filter(|r| r.stream.is_some()).count() as u64;
    assert_eq!(a.captures[0].tcp_packets, tcp_frames, "{stem}");
    assert_eq!(a.connections.len(), streams.len(), "{stem}");
    for (id, frames) in &streams {
        let c = &a.connections[*id as usize];
        assert_eq!(c.first_frame.local(), frames[0].frame, "{stem} stream {id}");
        assert_eq!(
            c.last_frame.local(),
            frames.last().unwrap().frame,
            "{stem} stream {id}"
        );
        assert_eq!(c.client.to_string(), frames[0].src, "{stem} stream {id}");
    }
    every_frame_counted(&a);
    a
}

#[test]
fn out_of_order_fragments_complete_in_the_frame_tshark_names() {
    let a = agrees_with_tshark("frag/out-of-order");
    // The 3000-byte segment counts in the byte totals, and the FIN's
    // sequence number fits it: a clean close by the client.
    assert_eq!(a.connections[0].server_to_client.bytes, 3000);
    assert_eq!(
        format!("{:?}", a.connections[0].close.active_closer),
        "Client"
    );
    assert_eq!(skipped(&a)[&SkipReason::FragmentReassembled], 2);
    let a = agrees_with_tshark("frag/ipv6-order");
    assert_eq!(a.connections[0].server_to_client.bytes, 2980);
}

#[test]
fn a_duplicate_fragment_is_dropped_alone() {
    let a = agrees_with_tshark("frag/duplicate");
    assert_eq!(skipped(&a)[&SkipReason::FragmentDuplicate], 1);
    assert_eq!(skipped(&a)[&SkipReason::FragmentReassembled], 1);
}

#[test]
fn a_first_fragment_without_its_last_gives_no_segment() {
    let a = agrees_with_tshark("frag/missing-last");
    assert_eq!(a.connections[0].first_frame.local(), 2, "the whole SYN");
    assert_eq!(skipped(&a)[&SkipReason::FragmentIncomplete], 1);
}

#[test]
fn a_first_fragment_cut_by_the_snap_length_is_read_alone_as_tshark_does() {
    let a = agrees_with_tshark("frag/cut-first");
    assert_eq!(
        a.connections[0]
            .handshake
            .syn_frames
            .first()
            .map(|f| f.local()),
        Some(1)
    );
    // tshark leaves a cut IPv6 fragment undissected; so does timewait.
    let a = agrees_with_tshark("frag/cut-first-v6");
    assert_eq!(a.connections.len(), 0);
    assert_eq!(skipped(&a)[&SkipReason::IpFragment], 1);
    // A whole first fragment waits for the rest, which never comes.
    let a = agrees_with_tshark("frag/lone-first");
    assert_eq!(a.connections.len(), 0);
    assert_eq!(skipped(&a)[&SkipReason::FragmentIncomplete], 1);
}

/// Linux discards a datagram with overlapping fragments (RFC 5722, and
/// IPv4 since the FragmentSmack fixes); tshark reassembles it. The
/// difference is deliberate: the receiving host never saw that SYN.
#[test]
fn overlapping_fragments_discard_the_datagram_where_tshark_keeps_it() {
    let a = analyze_file(&fixture("frag/overlap.pcap"));
    assert_eq!(a.connections.len(), 0);
    assert_eq!(skipped(&a)[&SkipReason::FragmentOverlap], 2);
    every_frame_counted(&a);
    assert_eq!(streams(&tshark_truth("frag/overlap")).len(), 1);
    let text = stdout(&timewait(&[
        "analyze",
        fixture("frag/overlap.pcap").to_str().unwrap(),
    ]));
    assert!(
        text.contains("2 IP fragment overlapping (datagram discarded)"),
        "{text}"
    );
}

/// Fragments 31 s apart: Linux's queue timed out at 30 s (`ipfrag_time`),
/// so that SYN never arrived; 29 s apart still completes. tshark has no
/// time-out and reassembles both.
#[test]
fn fragments_more_than_thirty_seconds_apart_time_out() {
    let a = analyze_file(&fixture("frag/timeout.pcap"));
    assert_eq!(a.connections.len(), 1);
    assert_eq!(a.connections[0].client.port(), 40007);
    assert_eq!(a.connections[0].first_frame.local(), 3);
    assert_eq!(skipped(&a)[&SkipReason::FragmentTimedOut], 1);
    assert_eq!(skipped(&a)[&SkipReason::FragmentIncomplete], 1);
    every_frame_counted(&a);
    assert_eq!(streams(&tshark_truth("frag/timeout")).len(), 2);
}
