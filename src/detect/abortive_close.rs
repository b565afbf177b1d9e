//! `abortive-close`: an RST ends an established connection.
//!
//! RFC 9293 §3.10.7: an RST aborts the connection at once; nothing is left
//! in TIME_WAIT. Applications send one with SO_LINGER {1, 0} or by closing
//! with unread data (Linux: TcpExtTCPAbortOnClose / AbortOnData); a socket
//! that no longer exists answers any segment with RST.
//!
//! Fires when: a connection whose handshake completed (or was not captured)
//! carries an RST. Does not fire when: the RST refused a SYN
//! (`handshake-failure`), answered a challenge ACK (`paws-syn-drop`), or
//! answered a retransmitted FIN (`fin-retransmit-rst`).

use super::{Context, Detector, Evidence, Finding, FindingKind, Severity, pair, plural};
use crate::flow::Side;
use crate::track::HandshakeState;
use std::collections::BTreeMap;

pub const TEXTS: (&str, &str) = (
    "An RST tears the connection down at once, without the FIN exchange: unread data is \
     discarded, no TIME_WAIT is left on either side. Applications do this on purpose with \
     SO_LINGER {on, 0} (to avoid TIME_WAIT) or by accident by closing a socket with unread \
     data (Linux counts TcpExtTCPAbortOnClose and TcpExtTCPAbortOnData); a host whose socket \
     is already gone answers any segment with RST; middleboxes inject RSTs when their state \
     times out.",
    "Find out which side sends the RST and in which state: an RST right after the last \
     response is usually SO_LINGER 0 or a close with unread data in the application; an RST \
     answering a FIN means the socket was already gone. If the aim was to avoid TIME_WAIT, \
     reuse connections instead.",
);

pub struct AbortiveClose;

impl Detector for AbortiveClose {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::AbortiveClose]
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        let claimed = ctx.claimed_by(FindingKind::FinRetransmitRst);
        let paws = ctx.claimed_by(FindingKind::PawsSynDrop);
        let mut groups: BTreeMap<(String, Side), Vec<Evidence>> = BTreeMap::new();
        for c in ctx.conns {
            let (Some(frame), Some(by)) = (c.close.rst_frame, c.close.rst_by) else {
                continue;
            };
            let established = matches!(
                c.handshake.state,
                HandshakeState::Complete | HandshakeState::NotCaptured | HandshakeState::SynAckOnly
            );
            if !established || claimed.contains(&c.id) || paws.contains(&c.id) {
                continue;
            }
            let state = match c.close.rst_sender_state {
                Some(crate::track::TcpState::TimeWait) => {
                    "where TIME_WAIT was expected: its socket was already gone".to_string()
                }
                Some(s) => format!("in {s}"),
                None => "in an unknown state".to_string(),
            };
            let mut frames = vec![frame];
            frames.extend(c.close.first_fin_frame);
            frames.sort_unstable();
            let at = c
                .close
                .first_fin_at
                .filter(|_| c.close.first_fin_frame < Some(frame))
                .unwrap_or(c.end);
            groups
                .entry((pair(c.client.ip(), c.server), by))
                .or_default()
                .push(Evidence {
                    connection: c.id,
                    frames,
                    at,
                    note: format!("RST from the {by} {state}"),
                });
        }
        groups
            .into_iter()
            .map(|((host, by), evidence)| {
                let n = evidence.len() as u64;
                Finding::new(
                    FindingKind::AbortiveClose,
                    Severity::Info,
                    format!(
                        "{} ended by an RST from the {by} ({host})",
                        plural(n, "connection")
                    ),
                    Some(host),
                    evidence,
                )
            })
            .collect()
    }
}
