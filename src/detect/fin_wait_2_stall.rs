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

use super::{Context, Detector, Evidence, Finding, FindingKind, Severity, plural};
use crate::flow::Side;
use crate::track::TcpState;
use std::collections::BTreeMap;

pub const TEXTS: (&str, &str) = (
    "One side closed (FIN) and the other acknowledged it but never closed its own end: it sits \
     in CLOSE_WAIT until its application calls close(), while the first side waits in \
     FIN_WAIT_2 (Linux frees an orphaned one after net.ipv4.tcp_fin_timeout, 60 s). CLOSE_WAIT \
     sockets that pile up are an application leaking connections.",
    "On the side in CLOSE_WAIT, find the process holding the sockets (`ss -tanp state \
     close-wait`) and make it close connections when it reads end-of-file. A half-close may \
     also be deliberate (shutdown(SHUT_WR) while still reading): then nothing is wrong.",
);

/// Shorter half-closes are ordinary teardown in progress.
const MIN_STALL_S: f64 = 1.0;

pub struct FinWait2Stall;

impl Detector for FinWait2Stall {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::FinWait2Stall]
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        let Some(end) = ctx.capture_end else {
            return Vec::new();
        };
        let mut groups: BTreeMap<String, Vec<Evidence>> = BTreeMap::new();
        for c in ctx.conns {
            let waiting = match (c.close.client_state, c.close.server_state) {
                (TcpState::FinWait2, TcpState::CloseWait) => Side::Server,
                (TcpState::CloseWait, TcpState::FinWait2) => Side::Client,
                _ => continue,
            };
            let (Some(frame), Some(at)) = (c.close.first_fin_frame, c.close.first_fin_at) else {
                continue;
            };
            let stalled = end.secs_since(at);
            if stalled < MIN_STALL_S {
                continue;
            }
            let ip = c.endpoint(waiting).ip().to_string();
            groups.entry(ip).or_default().push(Evidence {
                connection: c.id,
                frames: vec![frame],
                at,
                note: format!(
                    "{waiting} in CLOSE_WAIT for at least {stalled:.1} s after the {}'s FIN",
                    waiting.peer()
                ),
            });
        }
        groups
            .into_iter()
            .map(|(ip, evidence)| {
                let n = evidence.len() as u64;
                Finding::new(
                    FindingKind::FinWait2Stall,
                    Severity::Info,
                    format!(
                        "{} half-closed: {ip} acknowledged the peer's FIN but never sent its own",
                        plural(n, "connection")
                    ),
                    Some(ip),
                    evidence,
                )
            })
            .collect()
    }
}
