//! `connection-churn`: many short connections between one client and one
//! server:port, each carrying little.
//!
//! Every TCP connection costs a handshake (one round trip before the first
//! byte), a teardown, at least seven packets of overhead, and a TIME_WAIT
//! socket on the side that closes first for 60 s. A connection pool or
//! HTTP/Redis keep-alive pays that once.
//!
//! Fires when: at least 20 connections with a completed handshake go from
//! one client IP to one server ip:port, their median duration is under
//! 1 s and their median payload under 16 KiB. Does not fire for a few
//! connections, or for long or bulk ones (a pool would not change them).
//!
//! Severity weighs the rate, because the cost is a rate: a few connections
//! a minute cost nothing (info, with the rate at which the pattern starts
//! to hurt); from [`WARN_RATE`] a second on it is a warning. The rate is
//! connections over the span from the first one's start to the last one's
//! end.

use super::{
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, Groups, KindSpec, Severity, pair,
    secs, sorted,
};
use crate::flow::Endpoint;
use crate::time::Timestamp;
use crate::track::{Closer, ConnId, ConnectionRecord, HandshakeState};
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "connection-churn",
    explanation: "Each new TCP connection costs a three-way handshake (a round trip before the first \
     request), a four-segment teardown and a TIME_WAIT socket for 60 s on the side that closes \
     first. Opening one connection per request multiplies that cost by the request rate and \
     is the usual cause of TIME_WAIT pile-ups and ephemeral-port exhaustion.",
    advice: "Reuse connections: a connection pool in the client (database and Redis clients have one), \
     HTTP keep-alive (HTTP/1.1 default; check for `Connection: close`), or a multiplexed \
     protocol (HTTP/2, gRPC). Size the pool's idle timeout below the server's keep-alive \
     timeout so the client, not the server, closes idle connections.",
    doc: include_str!("../../docs/findings/connection-churn.md"),
};

/// Fewer connections than this between one pair are not churn.
pub const MIN_CONNECTIONS: usize = 20;
const MAX_MEDIAN_DURATION_S: f64 = 1.0;
/// Connections a second from which churn is a warning: 600 TIME_WAIT
/// sockets held at once (at 60 s each) and ten extra handshake round trips
/// a second, where a pool would hold one connection. Below it the same
/// pattern is info.
pub const WARN_RATE: f64 = 10.0;
const MAX_MEDIAN_BYTES: u64 = 16 * 1024;

/// Per client IP and server ip:port, over connections with a complete
/// handshake: a 40-byte sample per connection (for the medians, and the
/// evidence of the pairs that turn out to churn) and counts. Evidence rows
/// are built at the end and only for those pairs: most pairs never fire,
/// and formatting a row per connection was the detector's whole cost.
#[derive(Default)]
pub struct ConnectionChurn {
    pairs: Groups<(IpAddr, Endpoint), Pair>,
}

#[derive(Default)]
struct Pair {
    samples: Vec<Sample>,
    end: Option<Timestamp>,
    tw_client: u64,
    tw_server: u64,
    overhead: u64,
}

/// One connection of a pair, in the order the connections were retired.
struct Sample {
    start: Timestamp,
    first_frame: u64,
    id: ConnId,
    duration_s: f64,
    bytes: u64,
}

/// A rate for people: `12.5/s` or, below one a second, `3.0/min`.
fn per_time(rate: f64) -> String {
    if rate >= 1.0 {
        format!("{rate:.1}/s")
    } else {
        format!("{:.1}/min", rate * 60.0)
    }
}

/// The middle value (the upper one of an even count), as f64.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

impl Detector for ConnectionChurn {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::ConnectionChurn]
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, _claims: &mut Claims) {
        if c.handshake.state != HandshakeState::Complete {
            return;
        }
        let p = self.pairs.entry((c.client.ip(), c.server)).or_default();
        let bytes = c.client_to_server.bytes + c.server_to_client.bytes;
        p.samples.push(Sample {
            start: c.start,
            first_frame: c.first_frame,
            id: c.id,
            duration_s: c.duration_s,
            bytes,
        });
        p.end = Some(p.end.map_or(c.end, |e| e.max(c.end)));
        if matches!(c.time_wait.holder, Closer::Client | Closer::Both) {
            p.tw_client += 1;
        }
        if matches!(c.time_wait.holder, Closer::Server | Closer::Both) {
            p.tw_server += 1;
        }
        // handshake 3 + teardown 4, as far as seen
        p.overhead += (c.client_to_server.packets + c.server_to_client.packets).min(7);
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((client, server), p) in sorted(std::mem::take(&mut self.pairs))
            .into_iter()
            .filter(|(_, p)| p.samples.len() >= MIN_CONNECTIONS)
        {
            let n = p.samples.len() as u64;
            let med_dur = median(p.samples.iter().map(|s| s.duration_s).collect());
            let med_bytes = median(p.samples.iter().map(|s| s.bytes as f64).collect());
            if med_dur > MAX_MEDIAN_DURATION_S || med_bytes > MAX_MEDIAN_BYTES as f64 {
                continue;
            }
            let mut evidence = EvidenceSet::new();
            for s in &p.samples {
                evidence.add(s.id, s.start, &[s.first_frame], || {
                    format!("{:.3} s, {} bytes", s.duration_s, s.bytes)
                });
            }
            let start = p.samples.iter().map(|s| s.start).min().unwrap_or_default();
            let end = p.end.unwrap_or_default();
            let span = end.secs_since(start);
            let rate = if span > 0.0 {
                n as f64 / span
            } else {
                n as f64
            };
            let (tw_client, tw_server, overhead) = (p.tw_client, p.tw_server, p.overhead);
            let where_tw = match (tw_client, tw_server) {
                (0, 0) => "no TIME_WAIT socket (these connections left none)".to_string(),
                (c, 0) => format!("{c} TIME_WAIT sockets on {client}"),
                (0, s) => format!("{s} TIME_WAIT sockets on {}", server.ip()),
                (c, s) => format!(
                    "{c} TIME_WAIT sockets on {client} and {s} on {}",
                    server.ip()
                ),
            };
            let severity = if rate >= WARN_RATE {
                Severity::Warning
            } else {
                Severity::Info
            };
            let mut summary = format!(
                "{n} connections from {client} to {server} in {} ({}), median \
                 {} and {med_bytes:.0} bytes each; one pooled connection would save \
                 {} handshakes, about {} packets and {where_tw}",
                secs(span),
                per_time(rate),
                secs(med_dur),
                n - 1,
                overhead.saturating_sub(7),
            );
            if severity == Severity::Info {
                let (lo, hi) = ctx.options.port_range;
                let range = u64::from(hi.saturating_sub(lo)) + 1;
                let tw = ctx.options.time_wait_s;
                summary.push_str(&format!(
                    "; at this rate it costs little: it starts to hurt at about {WARN_RATE:.0}/s \
                     ({:.0} TIME_WAIT sockets held at once), and a client that closes first runs \
                     out of its {range} ports at {:.0}/s",
                    WARN_RATE * tw,
                    range as f64 / tw
                ));
            }
            let broad = match client {
                IpAddr::V4(_) => format!(
                    "ip.src == {client} && tcp.dstport == {} && tcp.flags.syn == 1 && tcp.flags.ack == 0",
                    server.port()
                ),
                IpAddr::V6(_) => format!(
                    "ipv6.src == {client} && tcp.dstport == {} && tcp.flags.syn == 1 && tcp.flags.ack == 0",
                    server.port()
                ),
            };
            out.push(
                Finding::new(
                    FindingKind::ConnectionChurn,
                    severity,
                    summary,
                    Some(pair(client, server)),
                    evidence,
                )
                .with_broad_filter(broad),
            );
        }
        out
    }
}
