//! `server-active-close`: the server sends the first FIN, so the server
//! holds TIME_WAIT.
//!
//! RFC 9293 §3.6: whoever closes first enters TIME_WAIT. Servers close
//! first when they do not keep connections alive (HTTP/1.0, `Connection:
//! close`) or when a keep-alive idle timeout fires; the second shows as the
//! same idle time before every server FIN (nginx `keepalive_timeout`,
//! Apache `KeepAliveTimeout`, Redis `timeout`).
//!
//! Fires when: a server ip:port sent the first FIN on at least one
//! connection. Info. Names the idle timeout when at least 3 such closes
//! came after the same idle time (within 10 % or 50 ms), and says "right
//! after the response" when the server closed without idling. A capture
//! that starts after a connection's last data (no handshake, no payload
//! before the FIN) cannot know how long it idled: that close counts, its
//! idle time does not. "TIME_WAIT lands on" counts only the connections
//! whose server really entered TIME_WAIT (not those ended by RST).

use super::{
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, KindSpec, Severity, ip_filter,
    plural, secs,
};
use crate::flow::Endpoint;
use crate::track::{CloseKind, Closer, ConnectionRecord, HandshakeState};
use std::collections::BTreeMap;

pub const SPEC: KindSpec = KindSpec {
    name: "server-active-close",
    explanation: "The server sent the first FIN, so the server's kernel holds the TIME_WAIT socket for 60 s. \
     That costs the server memory and conntrack entries but no ports. When the server closes \
     idle keep-alive connections after a fixed time, a client that reuses connections less \
     often than that will find them closed (and may send a request into a closing connection), \
     and every connection still ends in TIME_WAIT on the server.",
    advice: "If the server closes right after each response, enable keep-alive (HTTP/1.1 without \
     `Connection: close`). If it closes idle connections after a fixed timeout, make the \
     client's pool idle timeout shorter than the server's keep-alive timeout, or raise the \
     server's (nginx keepalive_timeout, Apache KeepAliveTimeout, Redis timeout).",
    doc: include_str!("../../docs/findings/server-active-close.md"),
};

/// Per server: the idle time before each of its first FINs that the
/// capture can tell (8 bytes per connection, for the median and the
/// clustering), the closes, and the evidence.
#[derive(Default)]
pub struct ServerActiveClose {
    servers: BTreeMap<Endpoint, Server>,
}

#[derive(Default)]
struct Server {
    idles: Vec<f64>,
    /// Closes (with a known idle time) after the server sent data.
    responded: u64,
    closes: u64,
    /// Closes after which the server held TIME_WAIT.
    time_wait: u64,
    evidence: EvidenceSet,
}

/// Idle times within this of the median count as one cluster.
fn tolerance(median: f64) -> f64 {
    (median * 0.1).max(0.05)
}

impl Detector for ServerActiveClose {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::ServerActiveClose]
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        if c.close.active_closer != Closer::Server
            || !matches!(
                c.close.kind,
                CloseKind::Fin | CloseKind::Rst | CloseKind::Open
            )
        {
            return;
        }
        let (Some(frame), Some(at)) = (c.close.first_fin_frame, c.close.first_fin_at) else {
            return;
        };
        // Nothing before the FIN tells when the connection last spoke: no
        // data, and no completed handshake to count from.
        let blind = !matches!(c.handshake.state, HandshakeState::Complete)
            && c.client_to_server.bytes + c.server_to_client.bytes == 0;
        let idle = c.close.idle_before_fin_s.filter(|_| !blind);
        let s = self.servers.entry(c.server).or_default();
        s.idles.extend(idle);
        s.responded += u64::from(idle.is_some() && c.server_to_client.bytes > 0);
        s.closes += 1;
        // Both FINs before any RST: the server's kernel moved the socket to
        // TIME_WAIT when the client's FIN reached it (tcp_time_wait), even
        // if an RST later killed it; unless the RST answered a FIN
        // retransmission, which proves there was no socket to kill.
        let entered = matches!(c.time_wait.holder, Closer::Server | Closer::Both)
            || (matches!(c.close.kind, CloseKind::Fin | CloseKind::Simultaneous)
                && !claims.is_claimed(FindingKind::FinRetransmitRst, c.id));
        s.time_wait += u64::from(entered);
        s.evidence.add(c.id, at, &[frame], || match idle {
            Some(idle) => format!("server FIN after {} idle", secs(idle)),
            None => "server FIN; the capture holds no data or handshake before it, so its idle \
                     time is unknown"
                .to_string(),
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (server, s) in std::mem::take(&mut self.servers) {
            let Server {
                idles: mut v,
                responded,
                closes,
                time_wait,
                evidence,
            } = s;
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let median = v.get(n / 2).copied().unwrap_or(0.0);
            let tol = tolerance(median);
            let clustered = v.iter().filter(|x| (*x - median).abs() <= tol).count();
            let verdict = if n == 0 {
                "its idle time unknown (the capture holds no data or handshake before the FIN)"
                    .to_string()
            } else if median < 0.05 && clustered * 2 > n && responded * 2 > n as u64 {
                "right after its response (no keep-alive)".to_string()
            } else if median < 0.05 && clustered * 2 > n {
                "without idling, mostly without having sent any data".to_string()
            } else if n >= 3 && clustered == n {
                format!(
                    "after {median:.1} s idle every time: a keep-alive idle timeout of about \
                     {median:.1} s"
                )
            } else {
                format!("after a median {median:.3} s idle")
            };
            let lands = if time_wait == closes {
                format!("TIME_WAIT lands on {}", server.ip())
            } else if time_wait == 0 {
                "none left TIME_WAIT on the server (each ended by RST or is still open)".to_string()
            } else {
                format!(
                    "{time_wait} of them left TIME_WAIT on {} (the others ended by RST or are \
                     still open)",
                    server.ip()
                )
            };
            out.push(
                Finding::new(
                    FindingKind::ServerActiveClose,
                    Severity::Info,
                    format!(
                        "{server} closed {} first, {verdict}; {lands}",
                        plural(closes, "connection"),
                    ),
                    Some(server.to_string()),
                    evidence,
                )
                .with_broad_filter(format!(
                    "{} && tcp.srcport == {} && tcp.flags.fin == 1",
                    ip_filter("src", server.ip()),
                    server.port()
                )),
            );
        }
        out
    }
}
