//! The summary: connections by close kind, active closer and handshake
//! state, counted as records retire, and the totals of every capture.

use super::*;
use crate::detect::{Finding, Severity};
use crate::track::{CloseKind, Closer, ConnectionRecord, HandshakeState, HostRecord};

/// Connections by close kind, active closer and handshake state.
#[derive(Default)]
pub(super) struct Tally {
    close_kind: [u64; CloseKind::ALL.len()],
    closer: [u64; Closer::ALL.len()],
    handshake: [u64; HandshakeState::ALL.len()],
    /// client, server, unknown
    capture_near: [u64; 3],
    one_way: u64,
    started_before: u64,
}

impl Tally {
    pub(super) fn add(&mut self, c: &ConnectionRecord) {
        self.close_kind[c.close.kind.index()] += 1;
        self.closer[c.close.active_closer.index()] += 1;
        self.handshake[c.handshake.state.index()] += 1;
        let near = match c.handshake.capture_near {
            Some(crate::flow::Side::Client) => 0,
            Some(crate::flow::Side::Server) => 1,
            None => 2,
        };
        self.capture_near[near] += 1;
        self.one_way += u64::from(c.one_way);
        let packets = c.client_to_server.packets + c.server_to_client.packets;
        self.started_before += u64::from(c.role_inferred && packets > u64::from(c.ignored));
    }
}

pub(super) fn summarize(
    captures: &[CaptureReport],
    tally: &Tally,
    hosts: &[HostRecord],
    findings: &[Finding],
) -> Summary {
    let mut s = Summary {
        packets: captures.iter().map(|c| c.packets).sum(),
        tcp_packets: captures.iter().map(|c| c.tcp_packets).sum(),
        ..Summary::default()
    };
    for (k, n) in CloseKind::ALL.iter().zip(tally.close_kind) {
        s.by_close_kind.insert(k.as_str(), n);
    }
    for (k, n) in Closer::ALL.iter().zip(tally.closer) {
        s.by_active_closer.insert(k.as_str(), n);
    }
    for (k, n) in HandshakeState::ALL.iter().zip(tally.handshake) {
        s.by_handshake.insert(k.as_str(), n);
    }
    s.one_way_connections = tally.one_way;
    s.started_before_capture = tally.started_before;
    for (k, n) in ["client", "server", "unknown"]
        .iter()
        .zip(tally.capture_near)
    {
        s.capture_near.insert(k, n);
    }
    s.time_wait_peak = hosts
        .iter()
        .filter(|h| h.time_wait_peak > 0)
        .max_by_key(|h| h.time_wait_peak)
        .map(|h| TimeWaitPeak {
            ip: h.ip,
            sockets: h.time_wait_peak,
            at: h.peak_at,
        });
    for sev in [Severity::Info, Severity::Warning, Severity::Error] {
        s.findings.insert(sev, 0);
    }
    for f in findings {
        *s.findings.entry(f.severity).or_default() += 1;
    }
    let first = captures.iter().filter_map(|c| c.first).min();
    let last = captures.iter().filter_map(|c| c.last).max();
    if let (Some(a), Some(b)) = (first, last) {
        s.duration_s = b.secs_since(a);
    }
    s.time_jumps = captures.iter().map(|c| c.time_jumps).sum();
    s.captured_s = captures.iter().map(|c| c.captured_s).sum();
    s.overlap_skipped = captures.iter().map(|c| c.overlap_skipped).sum();
    s
}
