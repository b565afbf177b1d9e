//! `tuple-reuse`: a new connection on a 4-tuple whose previous incarnation
//! is still inside its TIME_WAIT interval.
//!
//! RFC 9293 §3.6.1 and RFC 6191: a TIME_WAIT socket may accept a new SYN
//! whose sequence number (or TSval) is higher than the old connection's;
//! Linux does so on the server side (tcp_timewait_state_process,
//! TcpExtTWRecycled) and, with net.ipv4.tcp_tw_reuse=1, lets a client reuse
//! its own TIME_WAIT port for a new outgoing connection after 1 s when
//! timestamps are on.
//!
//! Fires when: a SYN opens a new incarnation of a 4-tuple before the
//! previous incarnation's TIME_WAIT would have ended. Info.

use super::{
    Claims, Context, Detector, EvidenceSet, FactsWanted, Finding, FindingKind, KindSpec,
    SegmentFacts, Severity, pair, plural, syn_filter,
};
use crate::flow::Endpoint;
use crate::frame::FrameId;
use crate::time::Timestamp;
use crate::track::{Closer, ConnId, ConnectionRecord};
use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "tuple-reuse",
    explanation: "A new connection used the same 4-tuple while the previous one was still in TIME_WAIT. \
     The holder's kernel accepted it: a client with net.ipv4.tcp_tw_reuse=1 reuses its own \
     TIME_WAIT port after 1 s when timestamps prove the new segments are newer, and a server's \
     TIME_WAIT socket accepts a SYN whose sequence number or timestamp is higher than the old \
     connection's (RFC 6191; Linux counts TcpExtTWRecycled). It works, but it is the sign of a \
     client cycling through its ports quickly, and a SYN with an older timestamp would be \
     refused instead (see paws-syn-drop).",
    advice: "If this is the client's tcp_tw_reuse at work, it is a sign of port pressure: reuse \
     connections instead of opening new ones. Make sure both sides keep TCP timestamps on \
     (net.ipv4.tcp_timestamps), which this safety check needs.",
    doc: include_str!("../../docs/findings/tuple-reuse.md"),
};

/// A reuse seen on a SYN, decided when its connection ends (paws-syn-drop
/// may explain it).
struct Pending {
    frame: FrameId,
    at: Timestamp,
    gap: f64,
    previous: ConnId,
    holder: Closer,
    client: IpAddr,
    server: Endpoint,
}

#[derive(Default)]
struct Group {
    evidence: EvidenceSet,
    by_client: u64,
}

#[derive(Default)]
pub struct TupleReuse {
    pending: HashMap<ConnId, Pending>,
    groups: HashMap<(IpAddr, Endpoint), Group>,
}

impl Detector for TupleReuse {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::TupleReuse]
    }

    fn facts_wanted(&self) -> FactsWanted {
        FactsWanted::Reuse
    }

    fn on_segment_facts(&mut self, facts: &mut SegmentFacts) {
        let seg = &facts.seg;
        let Some(reuse) = facts.reuse.as_deref() else {
            return;
        };
        let (Some(from), Some(until)) = (reuse.time_wait_from, reuse.time_wait_until) else {
            return;
        };
        if seg.ts >= until {
            return;
        }
        self.pending.entry(facts.conn).or_insert(Pending {
            frame: seg.frame,
            at: seg.ts,
            gap: seg.ts.secs_since(from),
            previous: reuse.previous,
            holder: reuse.holder,
            client: facts.client().ip(),
            server: facts.server(),
        });
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        if self.pending.is_empty() {
            return;
        }
        let Some(p) = self.pending.remove(&c.id) else {
            return;
        };
        // A reuse the TIME_WAIT socket refused is explained by paws-syn-drop.
        if claims.is_claimed(FindingKind::PawsSynDrop, c.id) {
            return;
        }
        let g = self.groups.entry((p.client, p.server)).or_default();
        if p.holder == Closer::Client {
            g.by_client += 1;
        }
        g.evidence.add(c.id, p.at, &[p.frame], || {
            format!(
                "SYN {:.3} s into the TIME_WAIT of connection {} (held by the {})",
                p.gap,
                p.previous,
                match p.holder {
                    Closer::Client => "client",
                    Closer::Server => "server",
                    Closer::Both => "both sides",
                    Closer::None => "nobody",
                }
            )
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        // By address and port, not by their text (10.0.0.2 before
        // 10.0.0.10), as every detector orders its groups.
        let mut groups: Vec<((IpAddr, Endpoint), Group)> =
            std::mem::take(&mut self.groups).into_iter().collect();
        groups.sort_by_key(|(k, _)| *k);
        groups
            .into_iter()
            .map(|((client, server), g)| {
                let host = pair(client, server);
                let n = g.evidence.count();
                let who = if g.by_client == n {
                    "the client's own TIME_WAIT ports (tcp_tw_reuse)"
                } else if g.by_client == 0 {
                    "4-tuples the server held in TIME_WAIT"
                } else {
                    "4-tuples in TIME_WAIT on the client or the server"
                };
                Finding::new(
                    FindingKind::TupleReuse,
                    Severity::Info,
                    format!("{} from {host} reused {who}", plural(n, "connection")),
                    Some(host),
                    g.evidence,
                )
                .with_broad_filter(syn_filter(Some(client), server))
            })
            .collect()
    }
}
