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
    idles: Idles,
    /// Closes (with a known idle time) after the server sent data.
    responded: u64,
    closes: u64,
    /// Closes after which the server held TIME_WAIT.
    time_wait: u64,
    evidence: EvidenceSet,
}

/// Idle times within this of the median count as one cluster.
/// Exact idle times are kept up to this many server closes per server
/// (8 bytes each); past it, a histogram with buckets 1 % wide, and the
/// report says "about".
pub const EXACT_IDLES: usize = 8192;

/// A server's idle times before its FIN: exact, or past [`EXACT_IDLES`] a
/// log histogram (bounded: about 2,300 buckets from 1 µs to a day).
enum Idles {
    Exact(Vec<f64>),
    Histogram {
        n: usize,
        buckets: BTreeMap<i32, u64>,
    },
}

impl Default for Idles {
    fn default() -> Idles {
        Idles::Exact(Vec::new())
    }
}

/// Bucket growth of the histogram: 1 % per bucket.
const GROWTH: f64 = 1.01;
/// Values below this (1 µs) share bucket `i32::MIN`, read as 0.
const SMALLEST: f64 = 1e-6;

fn bucket(x: f64) -> i32 {
    if x < SMALLEST {
        i32::MIN
    } else {
        ((x / SMALLEST).ln() / GROWTH.ln()).floor() as i32
    }
}

/// The middle of a bucket (geometric), within 0.5 % of every value in it.
fn bucket_value(k: i32) -> f64 {
    if k == i32::MIN {
        0.0
    } else {
        SMALLEST * GROWTH.powf(f64::from(k) + 0.5)
    }
}

impl Idles {
    fn push(&mut self, x: f64) {
        match self {
            Idles::Exact(v) if v.len() < EXACT_IDLES => v.push(x),
            Idles::Exact(v) => {
                let mut buckets = BTreeMap::new();
                for y in v.drain(..).chain([x]) {
                    *buckets.entry(bucket(y)).or_insert(0) += 1;
                }
                *self = Idles::Histogram {
                    n: EXACT_IDLES + 1,
                    buckets,
                };
            }
            Idles::Histogram { n, buckets } => {
                *n += 1;
                *buckets.entry(bucket(x)).or_insert(0) += 1;
            }
        }
    }

    /// How many, the median (upper middle), how many lie within the
    /// tolerance of it, and whether these are estimates.
    fn summary(self) -> (usize, f64, usize, bool) {
        match self {
            Idles::Exact(mut v) => {
                v.sort_by(f64::total_cmp);
                let n = v.len();
                let median = v.get(n / 2).copied().unwrap_or(0.0);
                let tol = tolerance(median);
                let clustered = v.iter().filter(|x| (*x - median).abs() <= tol).count();
                (n, median, clustered, false)
            }
            Idles::Histogram { n, buckets } => {
                let mut seen = 0u64;
                let mut median = 0.0;
                for (k, c) in &buckets {
                    seen += c;
                    if seen > (n / 2) as u64 {
                        median = bucket_value(*k);
                        break;
                    }
                }
                let tol = tolerance(median);
                let clustered = buckets
                    .iter()
                    .filter(|(k, _)| (bucket_value(**k) - median).abs() <= tol)
                    .map(|(_, c)| *c as usize)
                    .sum();
                (n, median, clustered, true)
            }
        }
    }
}

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
        if let Some(idle) = idle {
            s.idles.push(idle);
        }
        s.responded += u64::from(idle.is_some() && c.server_to_client.bytes > 0);
        s.closes += 1;
        // Both FINs, and the server acknowledged the client's before any
        // RST of its own: its kernel moved the socket to TIME_WAIT then
        // (tcp_time_wait), even if an RST later killed it; unless the RST
        // answered a FIN retransmission, which proves there was no socket.
        // An RST instead of that ACK means there was no socket at all.
        let entered = matches!(c.time_wait.holder, Closer::Server | Closer::Both)
            || (matches!(c.close.kind, CloseKind::Fin | CloseKind::Simultaneous)
                && c.close.closer_acked_peer_fin
                && !claims.is_claimed(FindingKind::FinRetransmitRst, c.id));
        s.time_wait += u64::from(entered);
        s.evidence.add(c.id, at, &[frame], || match idle {
            Some(idle) => format!("server FIN after {} idle", secs(idle)),
            None => "server FIN; the capture does not show when the connection last carried data \
                     before it, so its idle time is unknown"
                .to_string(),
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (server, s) in std::mem::take(&mut self.servers) {
            let Server {
                idles,
                responded,
                closes,
                time_wait,
                evidence,
            } = s;
            let (n, median, clustered, estimate) = idles.summary();
            // Past EXACT_IDLES closes the numbers come from the histogram.
            let about = if estimate { "about " } else { "" };
            let verdict = if n == 0 {
                "its idle time unknown (the capture does not show when the connection last \
                 carried data before the FIN)"
                    .to_string()
            } else if median < 0.05 && clustered * 2 > n && responded * 2 > n as u64 {
                "right after its response (no keep-alive)".to_string()
            } else if median < 0.05 && clustered * 2 > n {
                "without idling, mostly without having sent any data".to_string()
            } else if n >= 3 && clustered == n {
                format!(
                    "after {about}{median:.1} s idle every time: a keep-alive idle timeout of \
                     about {median:.1} s"
                )
            } else {
                format!("after a median {about}{median:.3} s idle")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn idles(values: impl IntoIterator<Item = f64>) -> Idles {
        let mut i = Idles::default();
        for v in values {
            i.push(v);
        }
        i
    }

    #[test]
    fn exact_up_to_the_cap_then_a_histogram_within_one_percent() {
        // 4.90 s .. 5.10 s, with a few stragglers.
        let spread = |n: usize| (0..n).map(move |i| 4.9 + 0.2 * (i % 1000) as f64 / 1000.0);
        let (n, median, clustered, estimate) = idles(spread(EXACT_IDLES)).summary();
        assert_eq!((n, clustered, estimate), (EXACT_IDLES, EXACT_IDLES, false));
        let mut v: Vec<f64> = spread(EXACT_IDLES).collect();
        v.sort_by(f64::total_cmp);
        assert_eq!(median, v[EXACT_IDLES / 2]);

        let many = spread(30_000).chain([0.0, 0.0, 3600.0]);
        let (n, median, clustered, estimate) = idles(many).summary();
        assert!(estimate);
        assert_eq!(n, 30_003);
        assert!((median - 5.0).abs() <= 0.05 * 1.01, "{median}");
        // Everything but the three stragglers is within 10 % of 5 s.
        assert_eq!(clustered, 30_000);
    }

    #[test]
    fn the_histogram_keeps_zero_and_tiny_idles_apart_from_the_rest() {
        let (_, median, clustered, _) =
            idles(std::iter::repeat_n(0.0, 9000).chain(std::iter::repeat_n(2.0, 4000))).summary();
        assert_eq!(median, 0.0);
        // Within 50 ms of 0: the zeros only.
        assert_eq!(clustered, 9000);
    }
}
