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

use super::{Context, Detector, Evidence, Finding, FindingKind, Severity, pair, secs};
use crate::flow::Endpoint;
use crate::track::{Closer, ConnectionRecord, HandshakeState};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const TEXTS: (&str, &str) = (
    "Each new TCP connection costs a three-way handshake (a round trip before the first \
     request), a four-segment teardown and a TIME_WAIT socket for 60 s on the side that closes \
     first. Opening one connection per request multiplies that cost by the request rate and \
     is the usual cause of TIME_WAIT pile-ups and ephemeral-port exhaustion.",
    "Reuse connections: a connection pool in the client (database and Redis clients have one), \
     HTTP keep-alive (HTTP/1.1 default; check for `Connection: close`), or a multiplexed \
     protocol (HTTP/2, gRPC). Size the pool's idle timeout below the server's keep-alive \
     timeout so the client, not the server, closes idle connections.",
);

/// Fewer connections than this between one pair are not churn.
pub const MIN_CONNECTIONS: usize = 20;
const MAX_MEDIAN_DURATION_S: f64 = 1.0;
const MAX_MEDIAN_BYTES: u64 = 16 * 1024;

pub struct ConnectionChurn;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

impl Detector for ConnectionChurn {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::ConnectionChurn]
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        let mut pairs: BTreeMap<(IpAddr, Endpoint), Vec<&ConnectionRecord>> = BTreeMap::new();
        for c in ctx.conns {
            if c.handshake.state == HandshakeState::Complete {
                pairs.entry((c.client.ip(), c.server)).or_default().push(c);
            }
        }
        let mut out = Vec::new();
        for ((client, server), conns) in pairs {
            if conns.len() < MIN_CONNECTIONS {
                continue;
            }
            let n = conns.len() as u64;
            let med_dur = median(conns.iter().map(|c| c.duration_s).collect());
            let med_bytes = median(
                conns
                    .iter()
                    .map(|c| (c.client_to_server.bytes + c.server_to_client.bytes) as f64)
                    .collect(),
            );
            if med_dur > MAX_MEDIAN_DURATION_S || med_bytes > MAX_MEDIAN_BYTES as f64 {
                continue;
            }
            let start = conns.iter().map(|c| c.start).min().unwrap_or_default();
            let end = conns.iter().map(|c| c.end).max().unwrap_or_default();
            let span = end.secs_since(start);
            let rate = if span > 0.0 {
                n as f64 / span
            } else {
                n as f64
            };
            let tw_client = conns
                .iter()
                .filter(|c| matches!(c.time_wait.holder, Closer::Client | Closer::Both))
                .count() as u64;
            let tw_server = conns
                .iter()
                .filter(|c| matches!(c.time_wait.holder, Closer::Server | Closer::Both))
                .count() as u64;
            let overhead: u64 = conns
                .iter()
                .map(|c| {
                    // handshake 3 + teardown 4, as far as seen
                    let seen = c.client_to_server.packets + c.server_to_client.packets;
                    seen.min(7)
                })
                .sum();
            let where_tw = match (tw_client, tw_server) {
                (c, 0) => format!("{c} TIME_WAIT sockets on {client}"),
                (0, s) => format!("{s} TIME_WAIT sockets on {}", server.ip()),
                (c, s) => format!(
                    "{c} TIME_WAIT sockets on {client} and {s} on {}",
                    server.ip()
                ),
            };
            let summary = format!(
                "{n} connections from {client} to {server} in {} ({rate:.1}/s), median \
                 {} and {med_bytes:.0} bytes each; one pooled connection would save \
                 {} handshakes, about {} packets and {where_tw}",
                secs(span),
                secs(med_dur),
                n - 1,
                overhead.saturating_sub(7),
            );
            let evidence = conns
                .iter()
                .map(|c| Evidence {
                    connection: c.id,
                    frames: vec![c.first_frame],
                    at: c.start,
                    note: format!(
                        "{:.3} s, {} bytes",
                        c.duration_s,
                        c.client_to_server.bytes + c.server_to_client.bytes
                    ),
                })
                .collect();
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
                    Severity::Warning,
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
