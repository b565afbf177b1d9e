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

use super::{Context, Detector, Evidence, Finding, FindingKind, Severity, pair, plural};
use crate::decode::Segment;
use crate::track::{Closer, ConnId, Connection, Observation};
use std::collections::BTreeMap;

pub const TEXTS: (&str, &str) = (
    "A new connection used the same 4-tuple while the previous one was still in TIME_WAIT. \
     The holder's kernel accepted it: a client with net.ipv4.tcp_tw_reuse=1 reuses its own \
     TIME_WAIT port after 1 s when timestamps prove the new segments are newer, and a server's \
     TIME_WAIT socket accepts a SYN whose sequence number or timestamp is higher than the old \
     connection's (RFC 6191; Linux counts TcpExtTWRecycled). It works, but it is the sign of a \
     client cycling through its ports quickly, and a SYN with an older timestamp would be \
     refused instead (see paws-syn-drop).",
    "If this is the client's tcp_tw_reuse at work, it is a sign of port pressure: reuse \
     connections instead of opening new ones. Make sure both sides keep TCP timestamps on \
     (net.ipv4.tcp_timestamps), which this safety check needs.",
);

#[derive(Default)]
pub struct TupleReuse {
    cases: Vec<(ConnId, Evidence, Closer, String)>,
}

impl Detector for TupleReuse {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::TupleReuse]
    }

    fn on_segment(&mut self, seg: &Segment, obs: &Observation, conn: &Connection) {
        let Some(reuse) = obs.reuse else { return };
        let (Some(from), Some(until)) = (reuse.time_wait_from, reuse.time_wait_until) else {
            return;
        };
        if seg.ts >= until {
            return;
        }
        let gap = seg.ts.secs_since(from);
        self.cases.push((
            obs.conn,
            Evidence {
                connection: obs.conn,
                frames: vec![seg.frame],
                at: seg.ts,
                note: format!(
                    "SYN {gap:.3} s into the TIME_WAIT of connection {} (held by the {})",
                    reuse.previous,
                    match reuse.holder {
                        Closer::Client => "client",
                        Closer::Server => "server",
                        Closer::Both => "both sides",
                        Closer::None => "nobody",
                    }
                ),
            },
            reuse.holder,
            pair(conn.client.ip(), conn.server),
        ));
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        // A reuse the TIME_WAIT socket refused is explained by paws-syn-drop.
        let refused = ctx.claimed_by(FindingKind::PawsSynDrop);
        let mut groups: BTreeMap<String, Vec<(Evidence, Closer)>> = BTreeMap::new();
        for (id, e, holder, host) in std::mem::take(&mut self.cases) {
            if refused.contains(&id) {
                continue;
            }
            groups.entry(host).or_default().push((e, holder));
        }
        groups
            .into_iter()
            .map(|(host, cases)| {
                let n = cases.len() as u64;
                let by_client = cases.iter().filter(|(_, h)| *h == Closer::Client).count();
                let who = if by_client == cases.len() {
                    "the client's own TIME_WAIT ports (tcp_tw_reuse)"
                } else if by_client == 0 {
                    "4-tuples the server held in TIME_WAIT"
                } else {
                    "4-tuples in TIME_WAIT on the client or the server"
                };
                Finding::new(
                    FindingKind::TupleReuse,
                    Severity::Info,
                    format!("{} from {host} reused {who}", plural(n, "connection")),
                    Some(host),
                    cases.into_iter().map(|(e, _)| e).collect(),
                )
            })
            .collect()
    }
}
