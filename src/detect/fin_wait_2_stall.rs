//! `fin-wait-2-stall`: one side's FIN was acknowledged but the other side
//! never sent its own.
//!
//! RFC 9293 §3.6: after its FIN is acknowledged the closer waits in
//! FIN_WAIT_2 for the peer's FIN; the peer sits in CLOSE_WAIT until its
//! application calls close(). Linux gives an orphaned FIN_WAIT_2 socket
//! `net.ipv4.tcp_fin_timeout` (60 s); a CLOSE_WAIT socket lives as long as
//! the application holds it — a leaked socket.
//!
//! Fires when: at the end of the capture one side is in FIN_WAIT_2, the
//! other in CLOSE_WAIT, and at least 1 s passed since the first FIN. Info.

use super::{
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, KindSpec, Severity, ip_filter,
    plural,
};
use crate::flow::Side;
use crate::frame::FrameId;
use crate::time::Timestamp;
use crate::track::{ConnId, ConnectionRecord, TcpState};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "fin-wait-2-stall",
    explanation: "One side closed (FIN) and the other acknowledged it but never closed its own end: it sits \
     in CLOSE_WAIT until its application calls close(), while the first side waits in \
     FIN_WAIT_2 (Linux frees an orphaned one after net.ipv4.tcp_fin_timeout, 60 s). CLOSE_WAIT \
     sockets that pile up are an application leaking connections.",
    advice: "On the side in CLOSE_WAIT, find the process holding the sockets (`ss -tanp state \
     close-wait`) and make it close connections when it reads end-of-file. A half-close may \
     also be deliberate (shutdown(SHUT_WR) while still reading): then nothing is wrong.",
    doc: include_str!("../../docs/findings/fin-wait-2-stall.md"),
};

/// Shorter half-closes are ordinary teardown in progress.
const MIN_STALL_S: f64 = 1.0;

/// A connection left half-closed; whether it stalled long enough depends
/// on the end of the capture, known only at `finish`.
struct Candidate {
    conn: ConnId,
    frame: FrameId,
    at: Timestamp,
    waiting: Side,
    ip: IpAddr,
}

#[derive(Default)]
pub struct FinWait2Stall {
    candidates: Vec<Candidate>,
}

impl Detector for FinWait2Stall {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::FinWait2Stall]
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, _claims: &mut Claims) {
        let waiting = match (c.close.client_state, c.close.server_state) {
            (TcpState::FinWait2, TcpState::CloseWait) => Side::Server,
            (TcpState::CloseWait, TcpState::FinWait2) => Side::Client,
            _ => return,
        };
        let (Some(frame), Some(at)) = (c.close.first_fin_frame, c.close.first_fin_at) else {
            return;
        };
        self.candidates.push(Candidate {
            conn: c.id,
            frame,
            at,
            waiting,
            ip: c.endpoint(waiting).ip(),
        });
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        let candidates = std::mem::take(&mut self.candidates);
        let Some(end) = ctx.capture_end else {
            return Vec::new();
        };
        let mut groups: BTreeMap<String, (IpAddr, EvidenceSet)> = BTreeMap::new();
        for c in candidates {
            let stalled = end.secs_since(c.at);
            if stalled < MIN_STALL_S {
                continue;
            }
            let waiting = c.waiting;
            groups
                .entry(c.ip.to_string())
                .or_insert_with(|| (c.ip, EvidenceSet::new()))
                .1
                .add(c.conn, c.at, &[c.frame], || {
                    format!(
                        "{waiting} in CLOSE_WAIT for at least {stalled:.1} s after the {}'s FIN",
                        waiting.peer()
                    )
                });
        }
        groups
            .into_iter()
            .map(|(ip_s, (ip, evidence))| {
                let n = evidence.count();
                Finding::new(
                    FindingKind::FinWait2Stall,
                    Severity::Info,
                    format!(
                        "{} half-closed: {ip_s} acknowledged the peer's FIN but never sent its own",
                        plural(n, "connection")
                    ),
                    Some(ip_s),
                    evidence,
                )
                .with_broad_filter(format!("{} && tcp.flags.fin == 1", ip_filter("addr", ip)))
            })
            .collect()
    }
}
