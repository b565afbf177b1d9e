//! `abortive-close`: an RST ends an established connection.
//!
//! RFC 9293 §3.10.7: an RST aborts the connection at once; nothing is left
//! in TIME_WAIT. Applications send one with SO_LINGER {1, 0} or by closing
//! with unread data (Linux: TcpExtTCPAbortOnClose / AbortOnData); a socket
//! that no longer exists answers any segment with RST.
//!
//! A closer's RST has a cause the packets can show: Linux resets a socket
//! the application closed (not just shut down for writing) when data
//! arrives after its FIN (tcp_rcv_state_process in FIN_WAIT1/FIN_WAIT2
//! with RCV_SHUTDOWN set: "RFC 1122 says we MUST send a reset",
//! TcpExtTCPAbortOnData). The evidence names it ("data after close") so it
//! is not mistaken for a lost TIME_WAIT socket.
//!
//! Fires when: a connection whose handshake completed (or was not captured)
//! carries an RST, and the capture holds more of it than that RST. Does not fire when: the RST refused a SYN
//! (`handshake-failure`), answered a challenge ACK (`paws-syn-drop`), or
//! answered a retransmitted FIN (`fin-retransmit-rst`).

use super::{
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, KindSpec, Severity, ip_filter,
    plural,
};
use crate::flow::{Endpoint, Side};
use crate::track::{ConnectionRecord, HandshakeState};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "abortive-close",
    explanation: "An RST tears the connection down at once, without the FIN exchange: unread data is \
     discarded, no TIME_WAIT is left on either side. Applications do this on purpose with \
     SO_LINGER {on, 0} (to avoid TIME_WAIT) or by accident by closing a socket with unread \
     data (Linux counts TcpExtTCPAbortOnClose and TcpExtTCPAbortOnData); a host whose socket \
     is already gone answers any segment with RST; middleboxes inject RSTs when their state \
     times out.",
    advice: "Find out which side sends the RST and in which state: an RST right after the last \
     response is usually SO_LINGER 0 or a close with unread data in the application; an RST \
     answering a FIN means the socket was already gone. If the aim was to avoid TIME_WAIT, \
     reuse connections instead.",
    doc: include_str!("../../docs/findings/abortive-close.md"),
};

/// Abortive closes per server ip:port and side that sent the RST (a busy
/// server has thousands of clients: one finding each would drown the
/// report), with the clients counted.
#[derive(Default)]
pub struct AbortiveClose {
    groups: HashMap<(Endpoint, Side), Group>,
}

#[derive(Default)]
struct Group {
    evidence: EvidenceSet,
    clients: HashSet<IpAddr>,
    data_after_close: u64,
}

/// Distinct clients are counted up to this many per group.
const MAX_CLIENTS_COUNTED: usize = 100_000;

impl Detector for AbortiveClose {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::AbortiveClose]
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        // The tracker tells: the closer's first RST after data that came
        // behind its FIN.
        let data_after_close = c.close.data_after_close;
        let (Some(frame), Some(by)) = (c.close.rst_frame, c.close.rst_by) else {
            return;
        };
        let established = matches!(
            c.handshake.state,
            HandshakeState::Complete | HandshakeState::NotCaptured | HandshakeState::SynAckOnly
        );
        // A lone RST (the 4-tuple's only packet in the capture) shows no
        // connection: a kernel answers any stray segment for a socket it
        // does not have with RST (tcp_v4_send_reset), and the capture may
        // have started just before it.
        let lone = c.client_to_server.packets + c.server_to_client.packets <= 1;
        if !established
            || lone
            || claims.is_claimed(FindingKind::FinRetransmitRst, c.id)
            || claims.is_claimed(FindingKind::PawsSynDrop, c.id)
        {
            return;
        }
        let mut frames = vec![frame];
        frames.extend(c.close.first_fin_frame);
        frames.extend(data_after_close);
        frames.sort_unstable();
        let at = c
            .close
            .first_fin_at
            .filter(|_| c.close.first_fin_frame < Some(frame))
            .unwrap_or(c.end);
        let group = self.groups.entry((c.server, by)).or_default();
        if group.clients.len() < MAX_CLIENTS_COUNTED {
            group.clients.insert(c.client.ip());
        }
        group.data_after_close += u64::from(data_after_close.is_some());
        group.evidence.add(c.id, at, &frames, || {
            let state = match (data_after_close, c.close.rst_sender_state) {
                (Some(data), _) => format!(
                    "after data (frame {}) arrived behind its own FIN: the application had \
                     closed the socket, so the kernel reset it (data after close, \
                     TcpExtTCPAbortOnData)",
                    data
                ),
                (None, Some(crate::track::TcpState::TimeWait)) => {
                    "where TIME_WAIT was expected: its socket was already gone".to_string()
                }
                (None, Some(s)) => format!("in {s}"),
                (None, None) => "in an unknown state".to_string(),
            };
            format!("RST from the {by} ({}) {state}", c.endpoint(by))
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        let mut groups: Vec<((Endpoint, Side), Group)> =
            std::mem::take(&mut self.groups).into_iter().collect();
        groups.sort_by_key(|(key, _)| *key);
        groups
            .into_iter()
            .map(|((server, by), group)| {
                let n = group.evidence.count();
                let clients = match group.clients.len() {
                    1 => format!(
                        "client {}",
                        group
                            .clients
                            .iter()
                            .next()
                            .map_or(String::new(), |c| c.to_string())
                    ),
                    k if k >= MAX_CLIENTS_COUNTED => format!("{k}+ clients"),
                    k => format!("{k} clients"),
                };
                // Every RST of this kind toward or from the server port.
                let broad = match by {
                    Side::Client => format!(
                        "{} && tcp.dstport == {} && tcp.flags.reset == 1",
                        ip_filter("dst", server.ip()),
                        server.port()
                    ),
                    Side::Server => format!(
                        "{} && tcp.srcport == {} && tcp.flags.reset == 1",
                        ip_filter("src", server.ip()),
                        server.port()
                    ),
                };
                Finding::new(
                    FindingKind::AbortiveClose,
                    Severity::Info,
                    format!(
                        "{} with {server} ({clients}) ended by an RST from the {by}{}",
                        plural(n, "connection"),
                        match group.data_after_close {
                            0 => String::new(),
                            k if k == n => {
                                ", each after data arrived behind its FIN (data after close)"
                                    .to_string()
                            }
                            k => format!(", {k} of them after data arrived behind its FIN"),
                        }
                    ),
                    Some(server.to_string()),
                    group.evidence,
                )
                .with_broad_filter(broad)
            })
            .collect()
    }
}
