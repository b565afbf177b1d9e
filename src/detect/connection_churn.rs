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
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, Groups, KindSpec, MAX_EVIDENCE,
    MAX_LISTED, Severity, pair, secs, sorted,
};
use crate::flow::Endpoint;
use crate::frame::FrameId;
use crate::time::Timestamp;
use crate::track::{Closer, ConnId, ConnectionRecord, HandshakeState};
use sketches_ddsketch::{Config, DDSketch};
use std::collections::BinaryHeap;
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
/// handshake: counts, the medians' inputs ([`Medians`]), the earliest
/// [`MAX_EVIDENCE`] connections (the evidence rows, if the pair turns out
/// to churn) and the [`MAX_LISTED`] smallest ids with their first frames
/// (the evidence lists). Memory per pair is bounded, whatever the length
/// of the capture; rows are formatted only for the pairs that fire.
#[derive(Default)]
pub struct ConnectionChurn {
    pairs: Groups<(IpAddr, Endpoint), Pair>,
}

#[derive(Default)]
struct Pair {
    n: u64,
    /// First and last connection start.
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    end: Option<Timestamp>,
    tw_client: u64,
    tw_server: u64,
    overhead: u64,
    medians: Medians,
    /// A max-heap of the earliest connections by (start, id).
    rows: BinaryHeap<Sample>,
    /// The smallest ids with their first frame, cut back to
    /// [`MAX_LISTED`] when twice that many wait.
    listed: Vec<(ConnId, FrameId)>,
    /// The largest id in `listed`.
    listed_max: ConnId,
}

/// One connection of a pair, kept while it is among the earliest.
#[derive(PartialEq)]
struct Sample {
    start: Timestamp,
    id: ConnId,
    first_frame: FrameId,
    duration_s: f64,
    bytes: u64,
}

impl Eq for Sample {}
impl PartialOrd for Sample {
    fn partial_cmp(&self, other: &Sample) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sample {
    /// The evidence's row order: time, then connection.
    fn cmp(&self, other: &Sample) -> std::cmp::Ordering {
        (self.start, self.id).cmp(&(other.start, other.id))
    }
}

/// Exact values are kept for the medians up to this many connections per
/// pair (16 bytes each); past it, a DDSketch of each (relative error
/// 1 %), and the report says "about".
pub const EXACT_MEDIANS: usize = 128;

/// The median duration and payload of a pair's connections.
enum Medians {
    Exact(Vec<(f64, u64)>),
    Sketch(Box<(DDSketch, DDSketch)>),
}

impl Default for Medians {
    fn default() -> Medians {
        Medians::Exact(Vec::new())
    }
}

impl Medians {
    fn add(&mut self, duration_s: f64, bytes: u64) {
        match self {
            Medians::Exact(v) if v.len() < EXACT_MEDIANS => v.push((duration_s, bytes)),
            Medians::Exact(v) => {
                let mut d = DDSketch::new(Config::defaults());
                let mut b = DDSketch::new(Config::defaults());
                for (x, y) in v.drain(..) {
                    d.add(x);
                    b.add(y as f64);
                }
                d.add(duration_s);
                b.add(bytes as f64);
                *self = Medians::Sketch(Box::new((d, b)));
            }
            Medians::Sketch(s) => {
                s.0.add(duration_s);
                s.1.add(bytes as f64);
            }
        }
    }

    /// Median duration and payload (the upper middle value when exact),
    /// and whether they are estimates.
    fn get(&self) -> (f64, f64, bool) {
        match self {
            Medians::Exact(v) => (
                median(v.iter().map(|s| s.0).collect()),
                median(v.iter().map(|s| s.1 as f64).collect()),
                false,
            ),
            Medians::Sketch(s) => {
                let q = |k: &DDSketch| k.quantile(0.5).ok().flatten().unwrap_or(0.0);
                (q(&s.0), q(&s.1), true)
            }
        }
    }
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
        p.n += 1;
        p.first = Some(p.first.map_or(c.start, |f| f.min(c.start)));
        p.last = Some(p.last.map_or(c.start, |l| l.max(c.start)));
        p.medians.add(c.duration_s, bytes);
        let sample = Sample {
            start: c.start,
            id: c.id,
            first_frame: c.first_frame,
            duration_s: c.duration_s,
            bytes,
        };
        if p.rows.len() < MAX_EVIDENCE {
            p.rows.push(sample);
        } else if p.rows.peek().is_some_and(|latest| sample < *latest) {
            p.rows.pop();
            p.rows.push(sample);
        }
        // Ids come nearly in order, so past the first MAX_LISTED nearly
        // every one is larger than all those kept and is not pushed.
        if p.listed.len() < MAX_LISTED || c.id < p.listed_max {
            p.listed.push((c.id, c.first_frame));
            p.listed_max = p.listed_max.max(c.id);
            if p.listed.len() >= 2 * MAX_LISTED {
                p.listed.sort_unstable();
                p.listed.truncate(MAX_LISTED);
                p.listed_max = p.listed.last().map_or(ConnId(0), |l| l.0);
            }
        }
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
        for ((client, server), mut p) in sorted(std::mem::take(&mut self.pairs))
            .into_iter()
            .filter(|(_, p)| p.n >= MIN_CONNECTIONS as u64)
        {
            let n = p.n;
            let (med_dur, med_bytes, about) = p.medians.get();
            if med_dur > MAX_MEDIAN_DURATION_S || med_bytes > MAX_MEDIAN_BYTES as f64 {
                continue;
            }
            let mut evidence = EvidenceSet::new();
            let rows = std::mem::take(&mut p.rows).into_sorted_vec();
            for s in &rows {
                evidence.add(s.id, s.start, &[s.first_frame], || {
                    format!("{:.3} s, {} bytes", s.duration_s, s.bytes)
                });
            }
            p.listed.sort_unstable();
            p.listed.truncate(MAX_LISTED);
            let start = p.first.unwrap_or_default();
            let mut cases = rows.len() as u64;
            for (id, frame) in &p.listed {
                if !rows.iter().any(|s| s.id == *id) {
                    // Its start is within [first, last], given below.
                    evidence.add_unkept(*id, start, &[*frame]);
                    cases += 1;
                }
            }
            evidence.add_unlisted(n - cases, start, p.last.unwrap_or_default());
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
            // Past EXACT_MEDIANS connections the medians are estimates.
            let about = if about { "about " } else { "" };
            let mut summary = format!(
                "{n} connections from {client} to {server} in {} ({}), median \
                 {about}{} and {about}{med_bytes:.0} bytes each; one pooled connection would \
                 save {} handshakes, about {} packets and {where_tw}",
                secs(span),
                per_time(rate),
                secs(med_dur),
                n - 1,
                overhead.saturating_sub(7),
            );
            if severity == Severity::Info {
                let (lo, hi) = ctx.config.port_range;
                let range = u64::from(hi.saturating_sub(lo)) + 1;
                let tw = ctx.config.time_wait_s;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Segment, TcpFlags};
    use crate::detect::DetectConfig;
    use crate::seq::SeqNum;
    use crate::track::Connection;

    /// A finished connection with a complete handshake from 10.0.0.1 to
    /// 10.0.0.2:80, to copy and adjust.
    fn template() -> ConnectionRecord {
        let (c, s) = (
            Endpoint("10.0.0.1:40000".parse().unwrap()),
            Endpoint("10.0.0.2:80".parse().unwrap()),
        );
        let seg = |frame: u64, src, dst, flags: u8, seq: u32, ack: u32| Segment {
            frame: FrameId(frame),
            ts: Timestamp::from_parts(1000, frame as i64 * 1_000_000),
            fragmentation: Default::default(),
            src,
            dst,
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags: TcpFlags(flags),
            window: 1000,
            payload_len: 0,
            tsopt: None,
            ip_id: None,
            wscale: None,
        };
        use TcpFlags as F;
        let segs = [
            seg(1, c, s, F::SYN, 100, 0),
            seg(2, s, c, F::SYN | F::ACK, 500, 101),
            seg(3, c, s, F::ACK, 101, 501),
            seg(4, c, s, F::FIN | F::ACK, 101, 501),
            seg(5, s, c, F::FIN | F::ACK, 501, 102),
            seg(6, c, s, F::ACK, 102, 502),
        ];
        let mut conn = Connection::new(ConnId(0), 0, &segs[0]);
        for x in &segs {
            conn.update(x);
        }
        conn.finish(60.0)
    }

    /// `n` connections of one pair, retired out of order, some starting
    /// out of id order; duration i ms, i bytes.
    fn records(n: u32) -> Vec<ConnectionRecord> {
        let base = template();
        let mut v: Vec<ConnectionRecord> = (0..n)
            .map(|i| {
                let mut r = base.clone();
                r.id = ConnId(i);
                r.first_frame = FrameId(u64::from(i) * 10 + 1);
                // Every seventh starts 3 s late: time and id disagree.
                let ms = i64::from(i) * 100 + if i % 7 == 0 { 3000 } else { 0 };
                r.start = Timestamp::from_parts(1000, ms * 1_000_000);
                r.duration_s = f64::from(i % 500) / 1000.0;
                r.end = r.start.add_secs(r.duration_s);
                r.client_to_server.bytes = u64::from(i % 300);
                r.server_to_client.bytes = 0;
                r
            })
            .collect();
        // Retire in a scrambled order.
        v.sort_by_key(|r| (r.id.0.wrapping_mul(2_654_435_761)) % 1009);
        v
    }

    fn run(recs: &[ConnectionRecord]) -> Finding {
        let mut d = ConnectionChurn::default();
        let mut claims = Claims::default();
        for r in recs {
            d.on_connection_end(r, &mut claims);
        }
        let config = DetectConfig::default();
        let ctx = Context {
            config: &config,
            capture_start: None,
            capture_end: None,
        };
        let mut f = d.finish(&ctx);
        assert_eq!(f.len(), 1);
        f.remove(0)
    }

    /// The evidence as it was built before: every connection added.
    fn every_case(recs: &[ConnectionRecord]) -> EvidenceSet {
        let mut e = EvidenceSet::new();
        for r in recs {
            let bytes = r.client_to_server.bytes + r.server_to_client.bytes;
            e.add(r.id, r.start, &[r.first_frame], || {
                format!("{:.3} s, {} bytes", r.duration_s, bytes)
            });
        }
        e
    }

    fn same_evidence(got: &Finding, recs: &[ConnectionRecord]) {
        let want = Finding::new(
            FindingKind::ConnectionChurn,
            got.severity,
            got.summary.clone(),
            got.host.clone(),
            every_case(recs),
        );
        assert_eq!(got.count, want.count);
        assert_eq!(got.connections, want.connections);
        assert_eq!(got.frames, want.frames);
        assert_eq!((got.first, got.last), (want.first, want.last));
        let rows = |f: &Finding| {
            f.evidence
                .iter()
                .map(|r| format!("{} {:?} {:?} {}", r.connection, r.frames, r.at, r.note))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(got), rows(&want));
    }

    #[test]
    fn bounded_evidence_equals_keeping_every_connection() {
        // Past MAX_LISTED ids (lists cut short) and EXACT_MEDIANS.
        let recs = records(2_500);
        let f = run(&recs);
        assert_eq!(f.count, 2_500);
        assert_eq!(f.connections.len(), MAX_LISTED);
        same_evidence(&f, &recs);
    }

    #[test]
    fn few_connections_give_exact_medians_and_many_say_about() {
        let recs = records(101);
        let f = run(&recs);
        same_evidence(&f, &recs);
        // Durations 0..100 ms: the upper middle of 101 is 50 ms.
        assert!(
            f.summary.contains("median 0.050 s and 50 bytes each"),
            "{}",
            f.summary
        );

        let recs = records(2_000);
        let f = run(&recs);
        same_evidence(&f, &recs);
        // The sketch's medians are within 1 % (and a rank) of the exact ones.
        let exact_ms = median(recs.iter().map(|r| r.duration_s).collect());
        let exact_bytes = median(
            recs.iter()
                .map(|r| r.client_to_server.bytes as f64)
                .collect(),
        );
        let s = &f.summary;
        let ms: f64 = s.split("median about ").nth(1).unwrap()[..5]
            .parse()
            .unwrap();
        assert!((ms - exact_ms).abs() <= 0.011 * exact_ms + 0.001, "{s}");
        let bytes: f64 = s
            .split(" and about ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (bytes - exact_bytes).abs() <= 0.011 * exact_bytes + 1.0,
            "{s} vs {exact_bytes}"
        );
    }
}
