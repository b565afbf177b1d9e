//! `handshake-failure`: SYNs that were refused or never answered.
//!
//! RFC 9293 §3.5: a SYN to a port without a listener is answered with RST
//! (connect() fails with ECONNREFUSED); a SYN that gets no answer is
//! retransmitted with exponential backoff (Linux: 1 s, 2 s, 4 s ...,
//! `net.ipv4.tcp_syn_retries`) until connect() gives up with ETIMEDOUT. No
//! answer means a firewall drop, a full accept/SYN backlog, or a host that
//! is down.
//!
//! Fires when: a connection's SYNs were refused (RST) or never answered.
//! Does not fire for SYNs explained by `paws-syn-drop` (timestamp
//! regression) or answered by a challenge ACK.

use super::{
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, Severity, plural, syn_filter,
};
use crate::flow::Endpoint;
use crate::track::{ConnectionRecord, HandshakeState};
use std::collections::BTreeMap;

pub const TEXTS: (&str, &str) = (
    "A SYN answered by RST means nothing listens on that port (connect() returns \
     ECONNREFUSED). A SYN with no answer is retransmitted with exponential backoff until \
     connect() times out (ETIMEDOUT): a firewall dropping it, a listener whose SYN or accept \
     queue is full (nstat TcpExtListenOverflows, TcpExtListenDrops), or a host that is down.",
    "For refusals, check the service is listening on the address and port (`ss -ltn`). For \
     unanswered SYNs, check firewall rules on the path and on the server, and the server's \
     listen queue: `nstat -az TcpExtListenOverflows TcpExtListenDrops`, `ss -ltn` (Recv-Q \
     against the backlog), net.core.somaxconn and the application's listen() backlog.",
);

#[derive(Default)]
struct Group {
    evidence: EvidenceSet,
    refused: u64,
    unanswered: u64,
}

/// Failed handshakes per server.
#[derive(Default)]
pub struct HandshakeFailure {
    groups: BTreeMap<Endpoint, Group>,
}

impl Detector for HandshakeFailure {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::HandshakeFailure]
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        let h = &c.handshake;
        if !matches!(h.state, HandshakeState::Refused | HandshakeState::SynOnly)
            || claims.is_claimed(FindingKind::PawsSynDrop, c.id)
        {
            return;
        }
        let g = self.groups.entry(c.server).or_default();
        if h.state == HandshakeState::Refused {
            g.refused += 1;
            let mut frames = h.syn_frames.clone();
            frames.extend(h.rst_frame);
            g.evidence.add(c.id, c.start, &frames, || {
                format!("refused by RST after {} SYN(s)", h.syn_retransmits + 1)
            });
        } else {
            g.unanswered += 1;
            g.evidence.add(c.id, c.start, &h.syn_frames, || {
                format!(
                    "{} SYN(s) over {:.1} s, never answered",
                    h.syn_retransmits + 1,
                    c.duration_s
                )
            });
        }
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        std::mem::take(&mut self.groups)
            .into_iter()
            .map(|(server, g)| {
                let mut parts = Vec::new();
                if g.refused > 0 {
                    parts.push(format!(
                        "{} refused (RST)",
                        plural(g.refused, "connection attempt")
                    ));
                }
                if g.unanswered > 0 {
                    parts.push(format!(
                        "{} never answered",
                        plural(g.unanswered, "connection attempt")
                    ));
                }
                Finding::new(
                    FindingKind::HandshakeFailure,
                    Severity::Warning,
                    format!("{server}: {}", parts.join(", ")),
                    Some(server.to_string()),
                    g.evidence,
                )
                .with_broad_filter(syn_filter(None, server))
            })
            .collect()
    }
}
