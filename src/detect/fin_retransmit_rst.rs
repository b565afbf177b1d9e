//! `fin-retransmit-rst`: the passive closer retransmits its FIN and the
//! active closer answers with RST.
//!
//! RFC 9293 §3.6: the active closer ACKs the peer's FIN and waits in
//! TIME_WAIT for 2·MSL, so that a lost final ACK can be sent again when the
//! FIN is retransmitted. Linux answers a segment for which no socket exists
//! with RST (tcp_v4_send_reset). A FIN retransmitted into an RST therefore
//! proves the active closer's TIME_WAIT socket was gone: not created
//! (`tcp_max_tw_buckets` reached, TcpExtTCPTimeWaitOverflow), killed
//! (`tcp_tw_recycle` before 4.12, SO_LINGER 0) or never needed because the
//! application aborted.
//!
//! Fires when: the first RST from the side that sent the first FIN comes
//! after the other side sent its own FIN at least twice with the same
//! sequence number: a TIME_WAIT ACK was due and an RST came instead. Does
//! not fire when: the RST answers the first FIN (no retransmission; that
//! is `abortive-close`), follows a retransmission of data without FIN, or
//! an earlier RST from the closer explains it: Linux resets a socket that
//! was closed (not just shut down for writing) when data arrives after its
//! FIN (tcp_rcv_state_process, FIN_WAIT1/FIN_WAIT2 with RCV_SHUTDOWN,
//! TcpExtTCPAbortOnData), and every later segment of the peer, its FIN
//! retransmissions included, then meets no socket; that is an
//! `abortive-close` (data after close), not a missing TIME_WAIT socket.

use super::{
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, KindSpec, Severity, ip_filter,
    plural,
};
use crate::decode::Segment;
use crate::flow::Side;
use crate::time::Timestamp;
use crate::track::{ConnId, Connection, ConnectionRecord, Observation};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "fin-retransmit-rst",
    explanation: "The passive closer waits in LAST_ACK until its FIN is acknowledged. The active closer's \
     final ACK did not arrive, so the FIN was retransmitted; a TIME_WAIT socket would have \
     answered it with the ACK again (that is what TIME_WAIT is for), but the active closer \
     answered with RST: it had no socket for the 4-tuple. Linux skips the TIME_WAIT socket when \
     net.ipv4.tcp_max_tw_buckets is reached (nstat TcpExtTCPTimeWaitOverflow), and kernels \
     before 4.12 killed it early with tcp_tw_recycle; SO_LINGER 0 resets instead of closing. \
     The peer sees a reset instead of a clean close, and on a lossy path its LAST_ACK sockets \
     linger until their retransmissions give up.",
    advice: "On the active closer, check `nstat -az TcpExtTCPTimeWaitOverflow` and `ss -tan state \
     time-wait | wc -l` against `sysctl net.ipv4.tcp_max_tw_buckets`; raise the limit, or \
     better make fewer connections end on this side: reuse connections (pool, keep-alive), or \
     let the peer close first. Never use SO_LINGER 0 for ordinary closes.",
    doc: include_str!("../../docs/findings/fin-retransmit-rst.md"),
};

/// A case on a connection still open: what its evidence row needs, the
/// note unformatted. Cases wait here until the connection ends (past its
/// TIME_WAIT), so a formatted note per case would cost about a hundred
/// bytes for every lossy close in the last minute; it is formatted only
/// when the finding's evidence keeps the row.
struct Case {
    closer_ip: IpAddr,
    /// The side that sent the first FIN and then the RST.
    closer: Side,
    /// How often the passive closer sent its FIN.
    fin_count: u32,
    at: Timestamp,
    frames: Box<[u64]>,
}

#[derive(Default)]
pub struct FinRetransmitRst {
    /// Cases on connections still open.
    cases: HashMap<ConnId, Case>,
    by_closer: BTreeMap<IpAddr, EvidenceSet>,
}

impl Detector for FinRetransmitRst {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::FinRetransmitRst]
    }

    fn wants_segments(&self) -> bool {
        true
    }

    fn on_segment(&mut self, seg: &Segment, obs: &Observation, conn: &Connection) {
        if !seg.flags.rst() || self.cases.contains_key(&obs.conn) {
            return;
        }
        let Some(closing) = conn.closing() else {
            return;
        };
        let Some(closer) = closing.first_fin_by else {
            return;
        };
        if obs.sender != closer {
            return;
        }
        // Only the closer's first RST can tell: after an earlier one
        // (an abort) the socket is gone for a reason of its own.
        if conn.rst_of(closer).is_some_and(|r| r.frame() != seg.frame) {
            return;
        }
        let passive = closing.side(closer.peer());
        if passive.fin_count < 2 {
            return;
        }
        let mut frames: Vec<u64> = closing
            .side(closer)
            .fin_first
            .map(|f| f.frame())
            .into_iter()
            .chain(passive.fin_frames.iter())
            .collect();
        frames.push(seg.frame);
        frames.sort_unstable();
        let at = closing.side(closer).fin_first.map_or(seg.ts, |f| f.at());
        self.cases.insert(
            obs.conn,
            Case {
                closer_ip: seg.src.ip(),
                closer,
                fin_count: passive.fin_count,
                at,
                frames: frames.into_boxed_slice(),
            },
        );
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        if self.cases.is_empty() {
            return;
        }
        if let Some(case) = self.cases.remove(&c.id) {
            claims.claim(FindingKind::FinRetransmitRst, c.id);
            let Case {
                closer_ip,
                closer,
                fin_count,
                at,
                frames,
            } = case;
            self.by_closer
                .entry(closer_ip)
                .or_default()
                .add(c.id, at, &frames, || {
                    format!(
                        "the {} sent its FIN {fin_count} times; the {closer} answered with RST, \
                         not the ACK a TIME_WAIT socket sends",
                        closer.peer(),
                    )
                });
        }
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        std::mem::take(&mut self.by_closer)
            .into_iter()
            .map(|(closer, evidence)| {
                let n = evidence.count();
                Finding::new(
                    FindingKind::FinRetransmitRst,
                    Severity::Warning,
                    format!(
                        "{}: the peer retransmitted its FIN and {closer} (the active closer) \
                         answered with RST: its TIME_WAIT socket was gone",
                        plural(n, "connection")
                    ),
                    Some(closer.to_string()),
                    evidence,
                )
                .with_broad_filter(format!(
                    "{} && tcp.flags.reset == 1",
                    ip_filter("src", closer)
                ))
            })
            .collect()
    }
}
