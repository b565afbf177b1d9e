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

use super::{Context, Detector, Evidence, Finding, FindingKind, Severity, plural};
use crate::flow::Endpoint;
use crate::track::HandshakeState;
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

pub struct HandshakeFailure;

impl Detector for HandshakeFailure {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::HandshakeFailure]
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        let explained = ctx.claimed_by(FindingKind::PawsSynDrop);
        let mut groups: BTreeMap<Endpoint, (Vec<Evidence>, u64, u64)> = BTreeMap::new();
        for c in ctx.conns {
            if explained.contains(&c.id) {
                continue;
            }
            let h = &c.handshake;
            let entry = groups.entry(c.server).or_default();
            match h.state {
                HandshakeState::Refused => {
                    let mut frames = h.syn_frames.clone();
                    frames.extend(h.rst_frame);
                    entry.1 += 1;
                    entry.0.push(Evidence {
                        connection: c.id,
                        frames,
                        at: c.start,
                        note: format!("refused by RST after {} SYN(s)", h.syn_retransmits + 1),
                    });
                }
                HandshakeState::SynOnly => {
                    entry.2 += 1;
                    entry.0.push(Evidence {
                        connection: c.id,
                        frames: h.syn_frames.clone(),
                        at: c.start,
                        note: format!(
                            "{} SYN(s) over {:.1} s, never answered",
                            h.syn_retransmits + 1,
                            c.duration_s
                        ),
                    });
                }
                _ => {}
            }
        }
        groups
            .into_iter()
            .filter(|(_, (e, _, _))| !e.is_empty())
            .map(|(server, (evidence, refused, unanswered))| {
                let mut parts = Vec::new();
                if refused > 0 {
                    parts.push(format!(
                        "{} refused (RST)",
                        plural(refused, "connection attempt")
                    ));
                }
                if unanswered > 0 {
                    parts.push(format!(
                        "{} never answered",
                        plural(unanswered, "connection attempt")
                    ));
                }
                Finding::new(
                    FindingKind::HandshakeFailure,
                    Severity::Warning,
                    format!("{server}: {}", parts.join(", ")),
                    Some(server.to_string()),
                    evidence,
                )
            })
            .collect()
    }
}
